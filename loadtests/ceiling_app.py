"""The resolver's ceiling: a bare Starlette app on Granian answering every request with a
constant 307, as DESIGN.md measures it. Serialink's throughput is reported against this."""

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route


async def redirect(request):
    return RedirectResponse("https://www.example.com/boilers/x100", status_code=307)


app = Starlette(routes=[Route("/{path:path}", redirect)])
