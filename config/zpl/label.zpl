^XA
^CI28
^PW812
^LL406
^FO30,30^BQN,2,5,M,7^FDMA,{{dl_uri}}^FS
^FO330,30^BXN,6,200,,,,_^FD{{datamatrix}}^FS
^FO560,40^A0N,26,26^FD(01) {{gtin}}^FS
{{#expiry}}^FO560,80^A0N,26,26^FD(17) {{expiry}}^FS
{{/expiry}}{{#lot}}^FO560,120^A0N,26,26^FD(10) {{lot}}^FS
{{/lot}}^FO560,160^A0N,26,26^FD(21) {{serial}}^FS
^PQ1
^XZ
