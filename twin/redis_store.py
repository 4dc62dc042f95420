"""Redis backend, single node (``redis://``) and Cluster (``redis+cluster://``).

Key layout (prefix ``sl``; ``{gtin}`` is the Cluster hash tag, so everything of one GTIN —
its units, batches, counters, overlays, links, scans, audit — lives in one slot, and every
Lua script touches keys of that slot only)::

    sl:{G}:u:<serial>         string  unit record (codec.encode_unit)
    sl:{G}:e:<serial>         list    the unit's events; its length is the unit's version
    sl:{G}:pd:<serial>        hash    owner id -> personal data (never read on a scan)
    sl:{G}:ik:<serial> <key>  string  idempotency key of a unit write -> (digest, version), EX 7 d
    sl:{G}:ctr:<profile>      string  next free counter (INCRBY)
    sl:{G}:rng:<profile>      zset    "<start %016d> <count> <batch id>", lexicographic
    sl:{G}:batches            hash    batch id -> batch record
    sl:{G}:req                hash    allocation request id -> batch id
    sl:{G}:imp:<serial>       string  imported serial -> batch id
    sl:{G}:ovl                hash    overlay id -> overlay
    sl:{G}:lnk                hash    "" | "lot:<lot>" | "ser:<serial>" -> linkset
    sl:{G}:scans              stream  chunks of up to 5000 scans (msgpack)
    sl:{G}:audit              stream  one entry per write: t r p a s d
    sl:{G}:ver                string  the GTIN's version (INCR per cacheable change)
    sl:{feed}:changes         stream  change feed: g k s v (MAXLEN ~ feed_maxlen)
    sl:{G}:pend:<serial>      hash    pending confirmation id -> record, <id>#x expiry ms, <id>#n wrong codes
    sl:{G}:iko:<key>          string  idempotency key of an overlay write -> overlay id, EX 7 d
    sl:{tokens}:t:<id>        string  issued token grant (PXAT its expiry)
    sl:{tokens}:revoked       hash    revoked token id -> expiry ms
    sl:{tokens}:log           stream  token issuance and revocation audit
    sl:{tokens}:lk            hash    line key id -> record (scope, hash of the key; never the key)
    sl:rl:<bucket>            string  rate-limit counter (PEXPIRE its window)
    sl:{G}:line:<batch id>    hash    line state: v (reports applied), s (twin.line_state record)
    sl:{G}:lrep:<batch id>    hash    line report id -> stored report (what it did, its indices)
    sl:{agg}:w                hash    child (01/<gtin>/21/<serial> or SSCC) -> the SSCC it is packed in
    sl:{agg}:c:<sscc>         hash    what an SSCC holds: child -> batch id ("" for a case)
    sl:{agg}:m                hash    SSCC -> origin (line, site, first packed)
    sl:{agg}:ed / :eb         hash    aggregation event id -> digest / stored event
    sl:{agg}:pe:<sscc>        list    the SSCC's event ids, in order
    sl:{agg}:bp:<batch id>    hash    SSCC -> how many units of the batch it holds (recalls)
    sl:{agg}:h                hash    child -> the SSCCs it was unpacked from, space-separated (queries)
    sl:{agg}:hb:<batch id>    set     the SSCCs units of the batch were unpacked from (queries)
    sl:{agg}:audit            stream  one entry per pack or unpack

Durability: the server must run ``appendonly yes`` + ``appendfsync always``. Redis then
writes and fsyncs the AOF before it answers, so a range it allocated survives a crash of
the server or the machine; with ``everysec`` the last second may be lost and a counter
could go back and re-issue serials. :meth:`RedisStore.allocate_range` refuses to run on a
server that reports anything else unless the URL says ``durability=relaxed``.

On a single node a write and its change-feed entry are one script (atomic). On a Cluster
the feed lives in another slot, so the entry is added right after the write: a client
that dies in between leaves the change out of the feed (the GTIN version still moved);
caches should keep a TTL as a backstop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import (
    Any,
    Concatenate,
    ParamSpec,
    TypeVar,
)
from urllib.parse import unquote, urlsplit, urlunsplit

import msgpack
import orjson
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from twin import codec
from twin.aggregation import (
    ADD,
    BATCH_HISTORY,
    DELETE,
    MAX_DEPTH,
    Aggregate,
    AggregationConflict,
    AggregationOp,
    AggregationSummary,
    Child,
    Snapshot,
    StoredAggregation,
    check_lookup,
    check_ops,
    check_sscc,
    decode_event,
    decode_meta,
    encode_meta,
    history_entries,
    keys_to_read,
    naming,
    plan,
)
from twin.batch import (
    MAX_COUNTER,
    Batch,
    BatchKind,
    BatchRange,
    BatchStatus,
    check_status_move,
    parse_batch_id,
)
from twin.coalesce import Coalescer
from twin.durability import durability_advice
from twin.errors import (
    CorruptRecord,
    DuplicateSerial,
    IdempotencyConflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StaleVersion,
    StoreError,
    UnsafeDurability,
)
from twin.events import Actor, Event, check_actor, check_event, now_utc
from twin.health import StoreHealth
from twin.identity import check_name, check_text
from twin.line_state import (
    LineReport,
    LineState,
    LineSummary,
    StoredReport,
    apply_report,
    check_line_batch,
    check_report_ids,
    decode_report,
    decode_state,
    encode_report,
    encode_state,
    same_report,
)
from twin.links import Anchor, LinkChain, LinkRecord, anchor_from_subject, check_anchor, check_links
from twin.overlays import Lift, Overlay, Scope, check_kind, check_scope
from twin.ownership import PersonalData
from twin.scans import (
    CHUNK_SLACK_MS,
    ScanChunk,
    ScanEvent,
    chunk_scans,
    chunks_of,
    unit_scans,
)
from twin.store import (
    IDEMPOTENCY_TTL_SECONDS,
    Appended,
    AuditEntry,
    Change,
    ChangeBatch,
    audit_detail,
    check_bucket,
    check_chain_key,
    check_gtin_key,
    check_idempotency_key,
    check_import_serials,
    check_limit,
    check_link_entries,
    check_record_id,
    check_ttl,
    check_unit_key,
    draft_batch,
    event_digest,
    expiry_ms,
    int_param,
    journey_record,
    new_overlay_id,
    next_unit,
    personal_owner,
    redact,
    same_overlay,
    same_request,
    token_expiry_ms,
    url_params,
)
from twin.unit import Unit

T = TypeVar("T")
P = ParamSpec("P")
#: Seconds any store call may take (``timeout=``), and a read a scan may wait on (``read_timeout=``).
DEFAULT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 0.5
_OUR_PARAMS = ("prefix", "max_connections", "durability", "feed_maxlen", "scan_maxlen", "max_inflight", "timeout",
               "read_timeout", "cooldown")
#: Errors that say the server is unreachable (they open the breaker, see twin.health).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError, MasterDownError, TryAgainError, TimeoutError,
                OSError)
_IMPORT_CHUNK = 2000

# Every mutating script starts with KEYS[1] = the GTIN's audit stream, KEYS[2] = its version
# counter, ends with the feed stream when single-node, and takes ARGV[1..9] =
# at_ms, role, principal, action, subject, detail, gtin, change kind, feed maxlen.
_TAIL = """
local function tail(nkeys, subject, detail)
  redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'r', ARGV[2], 'p', ARGV[3], 'a', ARGV[4], 's', subject, 'd', detail)
  local v = redis.call('INCR', KEYS[2])
  if #KEYS > nkeys then
    redis.call('XADD', KEYS[nkeys + 1], 'MAXLEN', '~', ARGV[9], '*', 'g', ARGV[7], 'k', ARGV[8], 's', subject, 'v', v)
  end
  return v
end
"""

# KEYS 3 head, 4 events, 5 idempotency, 6 personal.
# ARGV 10 expected length, 11 head, 12 event, 13 idempotent?, 14 idempotency record, 15 ttl,
# 16 owner ("" none), 17 personal data.
_APPEND = _TAIL + """
if ARGV[13] == '1' then
  local seen = redis.call('GET', KEYS[5])
  if seen then return {'dup', seen} end
end
local n = redis.call('LLEN', KEYS[4])
if n ~= tonumber(ARGV[10]) then return {'stale', n} end
redis.call('RPUSH', KEYS[4], ARGV[12])
redis.call('SET', KEYS[3], ARGV[11])
if ARGV[13] == '1' then redis.call('SET', KEYS[5], ARGV[14], 'EX', ARGV[15]) end
if ARGV[16] ~= '' then redis.call('HSET', KEYS[6], ARGV[16], ARGV[17]) end
return {'ok', tail(6, ARGV[5], ARGV[6])}
"""

# Allocations of one GTIN, coalesced: each request is handled on its own (a duplicate
# request id or a full counter answers that request only), all in one atomic script.
# KEYS 1 audit, 2 version, 3 requests, 4 batches, then per request i (0-based) 5+2i its
# profile's counter and 6+2i its range index; the feed last when single-node.
# ARGV 1 n, 2 gtin, 3 at_ms, 4 feed maxlen, 5 max counter, then per request 7 values from
# 6+7i: request id, count, profile, batch record, role, principal, action.
_ALLOCATE = """
local n, gtin, at, maxlen, maxc = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local feed = nil
if #KEYS > 4 + 2 * n then feed = KEYS[#KEYS] end
local out = {}
for i = 0, n - 1 do
  local a = 6 + 7 * i
  local rid, count, profile = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2]
  local ctr, rng = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local existing = redis.call('HGET', KEYS[3], rid)
  if existing then
    out[#out + 1] = {'dup', existing, redis.call('HGET', KEYS[4], existing)}
  else
    local used = tonumber(redis.call('GET', ctr) or '0')
    if used + count > maxc then
      out[#out + 1] = {'full', used}
    else
      local start = redis.call('INCRBY', ctr, count) - count
      local id = gtin .. '.' .. profile .. '.' .. string.format('%d', start)
      redis.call('HSET', KEYS[4], id, ARGV[a + 3])
      redis.call('HSET', KEYS[3], rid, id)
      redis.call('ZADD', rng, 0, string.format('%016d %d ', start, count) .. id)
      local detail = cmsgpack.pack({start = start, count = count, request_id = rid, profile = profile})
      redis.call('XADD', KEYS[1], '*', 't', at, 'r', ARGV[a + 4], 'p', ARGV[a + 5], 'a', ARGV[a + 6], 's', id, 'd', detail)
      local v = redis.call('INCR', KEYS[2])
      if feed then
        redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*', 'g', gtin, 'k', 'batch', 's', id, 'v', v)
      end
      out[#out + 1] = {'ok', id, v}
    end
  end
end
return out
"""

# KEYS 3 the hash. ARGV 10 field, 11 new value ("" deletes), 12 mode: any | new | cas | exists,
# 13 expected current value (cas).
_PUT_FIELD = _TAIL + """
local cur = redis.call('HGET', KEYS[3], ARGV[10])
local mode = ARGV[12]
if (mode == 'new' and cur) or (mode == 'exists' and not cur) or (mode == 'cas' and cur ~= ARGV[13]) then
  return {'conflict', cur}
end
if ARGV[11] == '' then redis.call('HDEL', KEYS[3], ARGV[10]) else redis.call('HSET', KEYS[3], ARGV[10], ARGV[11]) end
return {'ok', tail(3, ARGV[5], ARGV[6])}
"""

# KEYS 3 the hash. ARGV 10… pairs of field, value ("" deletes).
_PUT_MANY = _TAIL + """
for i = 10, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[3], ARGV[i]) else redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
end
return {'ok', tail(3, ARGV[5], ARGV[6])}
"""

# KEYS: imported-serial keys of one GTIN. ARGV 1 batch id. All or nothing per chunk.
_IMPORT = """
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k)
  if cur and cur ~= ARGV[1] then return {'taken', i, cur} end
end
for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1]) end
return {'ok', #KEYS}
"""

# KEYS 3 the batch's line state hash, 4 its reports hash. ARGV 10 expected version,
# 11 new state, 12 new version, 13… pairs of report id, stored report. A report id
# written meanwhile, or a state that moved on since it was read, answers 'stale' (the
# client reads again: a repeated report is then a replay).
_LINE_REPORT = _TAIL + """
local v = redis.call('HGET', KEYS[3], 'v') or '0'
if v ~= ARGV[10] then return {'stale', v} end
for i = 13, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[4], ARGV[i]) == 1 then return {'stale', v} end
end
redis.call('HSET', KEYS[3], 'v', ARGV[12], 's', ARGV[11])
for i = 13, #ARGV, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
return {'ok', tail(4, ARGV[5], ARGV[6])}
"""

# Aggregation: checked writes over the {agg} slot, all or nothing. ARGV[1] is one msgpack
# array of segments [op, key index, items] (one blob: the client does not encode a
# million arguments): A (fields must be absent), E ([field, expected value] pairs must
# match), then S (HSET field, value pairs), G (HSET of fields 2.. to the value 1: children
# into one parent, without repeating it), H (a G whose fields must also be absent: checked
# with the A segments, so a child's key is sent once), D (HDEL fields), I (HINCRBY field, delta pairs;
# a count that falls to 0 is removed), R (RPUSH values), X (XADD field, value pairs).
# Any check failing answers 'stale' before anything is written.
_AGGREGATE = """
local segs = cmsgpack.unpack(ARGV[1])
local STEP = 1000  -- fields per variadic call: well inside Lua's stack limit for unpack
local function each(items, width, fn)
  for j = 1, #items, STEP * width do fn(unpack(items, j, math.min(j + STEP * width - 1, #items))) end
end
for _, seg in ipairs(segs) do
  local op, key, items = seg[1], KEYS[seg[2]], seg[3]
  if op == 'A' or op == 'H' then
    local first = op == 'H' and 2 or 1  -- an H segment's item 1 is the value it sets
    for j = first, #items, STEP do
      local got = redis.call('HMGET', key, unpack(items, j, math.min(j + STEP - 1, #items)))
      for n = 1, #got do
        if got[n] then return {'stale', items[j + n - 1]} end
      end
    end
  elseif op == 'E' then
    for j = 1, #items, 2 * STEP do
      local last = math.min(j + 2 * STEP - 1, #items)
      local fields = {}
      for n = j, last, 2 do fields[#fields + 1] = items[n] end
      local got = redis.call('HMGET', key, unpack(fields))
      for n = 1, #got do
        if got[n] ~= items[j + 2 * n - 1] then return {'stale', fields[n]} end
      end
    end
  end
end
for _, seg in ipairs(segs) do
  local op, key, items = seg[1], KEYS[seg[2]], seg[3]
  if op == 'S' then
    each(items, 2, function(...) redis.call('HSET', key, ...) end)
  elseif op == 'G' or op == 'H' then
    local value = items[1]
    for j = 2, #items, STEP do
      local args = {}
      for n = j, math.min(j + STEP - 1, #items) do
        args[#args + 1] = items[n]
        args[#args + 1] = value
      end
      redis.call('HSET', key, unpack(args))
    end
  elseif op == 'D' then
    each(items, 1, function(...) redis.call('HDEL', key, ...) end)
  elseif op == 'I' then
    for j = 1, #items, 2 do
      if redis.call('HINCRBY', key, items[j], items[j + 1]) <= 0 then redis.call('HDEL', key, items[j]) end
    end
  elseif op == 'R' then
    each(items, 1, function(...) redis.call('RPUSH', key, ...) end)
  elseif op == 'X' then
    redis.call('XADD', key, '*', unpack(items))
  end
end
return {'ok'}
"""

# KEYS 1 the history hash (sl:{agg}:h), then one set per batch. ARGV 1 msgpack array of
# [key index, field or "", parent]: the parent is added to the hash field's space-separated
# list (once), or to the set when the field is "". Idempotent: a replay repeats it harmlessly.
_REMEMBER_UNPACKS = """
local items = cmsgpack.unpack(ARGV[1])
for _, item in ipairs(items) do
  local key, name, parent = KEYS[item[1]], item[2], item[3]
  if name == '' then
    redis.call('SADD', key, parent)
  else
    if redis.call('HSETNX', key, name, parent) == 0 then  -- most children leave their first parent
      local v = redis.call('HGET', key, name)
      if not string.find(' ' .. v .. ' ', ' ' .. parent .. ' ', 1, true) then
        redis.call('HSET', key, name, v .. ' ' .. parent)
      end
    end
  end
end
return #items
"""

# KEYS 1 a hash. ARGV 1 msgpack array of fields. Returns their values as one msgpack
# array (false: absent), so a bulk read costs no per-field argument encoding either.
_HMGET_PACKED = """
local fields = cmsgpack.unpack(ARGV[1])
local out = {}
for j = 1, #fields, 1000 do
  local got = redis.call('HMGET', KEYS[1], unpack(fields, j, math.min(j + 999, #fields)))
  for n = 1, #got do out[j + n - 1] = got[n] end
end
return cmsgpack.pack(out)
"""

# KEYS 1 ranges, 2 batches. ARGV 1 exclusive upper bound "(<counter + 1 %016d>".
_FIND_BATCH = """
local m = redis.call('ZRANGE', KEYS[1], ARGV[1], '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
if #m == 0 then return false end
local start, count, id = string.match(m[1], '^(%d+) (%d+) (.+)$')
return {start, count, id, redis.call('HGET', KEYS[2], id)}
"""


#: Small reads that a scan may wait on (through the resolver's caches and the serial
#: verifier): bounded by ``read_timeout``, like the coalesced unit reads; the rest by ``timeout``.
_SCAN_READS = frozenset({"get_units", "get_batch", "batch_ranges", "find_batch_by_counter", "get_overlays", "get_links",
                         "get_link_chain", "list_link_anchors", "gtin_version", "changes_cursor", "changes"})

# Journeys. Audit-only scripts take ARGV[1..6] = at_ms, role, principal, action, subject, detail.
_AUDIT = """
local function audit(key)
  redis.call('XADD', key, '*', 't', ARGV[1], 'r', ARGV[2], 'p', ARGV[3], 'a', ARGV[4], 's', ARGV[5], 'd', ARGV[6])
end
"""

# KEYS 1 the GTIN's audit, 2 the unit's pending hash. ARGV 7 id, 8 record, 9 expires_ms, 10 ttl_ms.
# Fields: <id> the record, <id>#x its expiry, <id>#n the wrong codes so far (kept on rewrite).
_PUT_PENDING = _AUDIT + """
redis.call('HSET', KEYS[2], ARGV[7], ARGV[8], ARGV[7] .. '#x', ARGV[9])
local ttl = tonumber(ARGV[10])
if ttl > 0 and redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
audit(KEYS[1])
return 1
"""

# KEYS 1 the pending hash. ARGV 1 id, 2 now_ms.
_FAIL_PENDING = """
local x = redis.call('HGET', KEYS[1], ARGV[1] .. '#x')
if not x or tonumber(x) <= tonumber(ARGV[2]) then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1] .. '#n', 1)
"""

# KEYS 1 token log, 2 the token's key. ARGV 7 record, 8 expiry (unix ms).
_RECORD_TOKEN = _AUDIT + """
local cur = redis.call('GET', KEYS[2])
if cur then return {'dup', cur} end
redis.call('SET', KEYS[2], ARGV[7], 'PXAT', ARGV[8])
audit(KEYS[1])
return {'ok', ARGV[7]}
"""

# KEYS 1 token log, 2 revoked hash. ARGV 7 token id, 8 expiry (unix ms).
_REVOKE_TOKEN = _AUDIT + """
if redis.call('HSETNX', KEYS[2], ARGV[7], ARGV[8]) == 0 then return 0 end
audit(KEYS[1])
return 1
"""

# KEYS 1 token log, 2 line keys hash. ARGV 7 key id, 8 record, 9 "add" (insert once) or "set" (replace).
_PUT_LINE_KEY = _AUDIT + """
local cur = redis.call('HGET', KEYS[2], ARGV[7])
if ARGV[9] == 'add' then
  if cur then return {'dup', cur} end
elseif not cur then
  return {'missing', ''}
end
redis.call('HSET', KEYS[2], ARGV[7], ARGV[8])
audit(KEYS[1])
return {'ok', ARGV[8]}
"""

# KEYS 1 the counter. ARGV 1 ttl_ms.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# KEYS 3 overlays hash, 4 the idempotency key. ARGV 10 overlay id, 11 record, 12 ttl (s).
_PUT_OVERLAY = _TAIL + """
local seen = redis.call('GET', KEYS[4])
if seen then return {'dup', seen, redis.call('HGET', KEYS[3], seen)} end
redis.call('HSET', KEYS[3], ARGV[10], ARGV[11])
redis.call('SET', KEYS[4], ARGV[10], 'EX', ARGV[12])
return {'ok', tail(4, ARGV[5], ARGV[6])}
"""


def _guard(
    method: Callable[Concatenate[RedisStore, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[RedisStore, P], Coroutine[Any, Any, T]]:
    """Report Redis failures as StoreError (the caller cannot know whether a write landed),
    bound the call in time and fail fast while the store is known to be down. The wrapper
    keeps the method's signature (for twin.store.UnitStore and every caller)."""
    bound = "_read_timeout" if method.__name__ in _SCAN_READS else "_timeout"

    @functools.wraps(method)
    async def wrapper(self: RedisStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise StoreError(f"{self.url}: store is closed")
        health = self.health
        if health.down_until and not health.available():
            raise StoreError(health.refusal(self.url))
        timeout = getattr(self, bound)
        task = asyncio.current_task()
        if task is None:  # what asyncio.timeout below would raise: it needs a task too
            raise RuntimeError("a RedisStore call must run inside an asyncio task")
        cancels = task.cancelling()
        try:
            async with asyncio.timeout(timeout):
                if self._limit is None:
                    result = await method(self, *args, **kwargs)
                else:
                    async with self._limit:
                        result = await method(self, *args, **kwargs)
        except TimeoutError as exc:  # asyncio's: the call took longer than the store's timeout
            health.failed(exc)
            raise StoreError(f"{self.url}: no answer within {timeout:g}s") from exc
        except RedisError as exc:
            health.failed(exc)
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if health.down_until:
            health.ok()
        if task.cancelling() > cancels:
            # redis-py can swallow a cancellation that lands while it tidies a connection
            # (seen in pipeline.execute): the caller asked to stop, so it stops here.
            raise asyncio.CancelledError
        return result

    return wrapper


class Keys:
    """Key names; every GTIN key carries the hash tag ``{gtin}``."""

    def __init__(self, prefix: str) -> None:
        self.p = prefix
        self.feed = f"{prefix}:{{feed}}:changes"
        self.tokens = f"{prefix}:{{tokens}}:"  # issued tokens, the revocation list, the token log: one slot

    def g(self, gtin: str) -> str:
        return f"{self.p}:{{{gtin}}}:"

    def unit(self, gtin: str, serial: str) -> str:
        return f"{self.p}:{{{gtin}}}:u:{serial}"

    def imported(self, gtin: str, serial: str) -> str:
        return f"{self.p}:{{{gtin}}}:imp:{serial}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _grouped(values: Mapping[str, str | None]) -> dict[str, list[str]]:
    """value -> the fields set to it (None: removed, left out), for 'G' segments."""
    out: dict[str, list[str]] = {}
    for field, value in values.items():
        if value is not None:
            out.setdefault(value, []).append(field)
    return out


class _Writes:
    """The KEYS and ARGV of one checked aggregation write (see ``_AGGREGATE``)."""

    def __init__(self, name: Callable[[str], str]) -> None:
        self.name = name
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.args: list[Any] = []

    def key(self, name: str) -> int:
        if name not in self.index:
            self.keys.append(self.name(name))
            self.index[name] = len(self.keys)
        return self.index[name]

    def seg(self, op: str, key: int, items: Sequence[Any], width: int = 1) -> None:
        if items:
            self.args.append([op, key, list(items)])


class RedisStore:
    """The Redis / Redis Cluster implementation of twin.store.UnitStore."""

    def __init__(self, url: str, client: Any, cluster: bool, params: Mapping[str, str]) -> None:
        self.url = redact(url)
        self.cluster = cluster
        self._r = client
        # redis-py's Cluster nodes raise MaxConnectionsError instead of waiting for a free
        # connection (the single-node pool blocks): queue operations here instead.
        max_connections = int_param(params, "max_connections", 64)
        self._limit = asyncio.Semaphore(max(1, max_connections // 2)) if cluster else None
        prefix = params.get("prefix", "sl")
        if not prefix.replace("_", "").replace("-", "").replace(".", "").isalnum() or len(prefix) > 64:
            raise InvalidInput("store_url.prefix", f"expected 1-64 of [A-Za-z0-9_.-], got {prefix!r}")
        self.keys = Keys(prefix)
        self._relaxed = params.get("durability", "strict") == "relaxed"
        self._feed_maxlen = int_param(params, "feed_maxlen", 100_000)
        self._scan_maxlen = int_param(params, "scan_maxlen", 0) or None
        self.durability = "unknown"
        self._durability_read = 0.0  # monotonic time the server's setting was last read
        self._scripts = {
            name: client.register_script(body)
            for name, body in (
                ("append", _APPEND),
                ("allocate", _ALLOCATE),
                ("put_field", _PUT_FIELD),
                ("put_many", _PUT_MANY),
                ("import", _IMPORT),
                ("find_batch", _FIND_BATCH),
                ("put_overlay", _PUT_OVERLAY),
                ("put_pending", _PUT_PENDING),
                ("fail_pending", _FAIL_PENDING),
                ("record_token", _RECORD_TOKEN),
                ("revoke_token", _REVOKE_TOKEN),
                ("put_line_key", _PUT_LINE_KEY),
                ("hit", _HIT),
                ("line_report", _LINE_REPORT),
                ("aggregate", _AGGREGATE),
                ("hmget_packed", _HMGET_PACKED),
                ("remember_unpacks", _REMEMBER_UNPACKS),
            )
        }
        inflight = int_param(params, "max_inflight", 4)
        # Bounded waits (see twin.health): every call, and a coalesced unit read — the scan
        # path's only store read — sooner; after a connection failure, fail fast for a moment.
        self._timeout = seconds_param(params, "timeout", DEFAULT_TIMEOUT)
        self._read_timeout = seconds_param(params, "read_timeout", DEFAULT_READ_TIMEOUT)
        self.health = StoreHealth(seconds_param(params, "cooldown", 1.0), _UNREACHABLE)
        self._reader: Coalescer[str, bytes | None] = Coalescer(
            self._mget, max_inflight=inflight, timeout=self._read_timeout, health=self.health)
        self._allocator: Coalescer[tuple[Batch, str], list[Any]] = Coalescer(
            self._allocate_many, max_batch=64, max_inflight=inflight, timeout=self._timeout, health=self.health
        )
        self._closed = False

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    async def open(cls, url: str) -> RedisStore:
        params = url_params(url)
        if params.get("durability", "strict") not in ("strict", "relaxed"):
            raise InvalidInput("store_url.durability", f"expected strict or relaxed, got {params['durability']!r}")
        max_connections = int_param(params, "max_connections", 64)
        parts = urlsplit(url)
        cluster = parts.scheme.endswith("+cluster")
        timeout = seconds_param(params, "timeout", DEFAULT_TIMEOUT)
        client: RedisCluster | aredis.Redis
        try:
            if cluster:
                client = _cluster_client(parts, max_connections, timeout)
                await client.initialize()
            else:
                query = "&".join(p for p in parts.query.split("&") if p and p.split("=")[0] not in _OUR_PARAMS)
                plain = urlunsplit(parts._replace(query=query))
                # socket timeouts tear down a connection to a server that stopped answering
                # (redis-py's default is 5 s per attempt, retried); ours are the call's bound
                pool = aredis.BlockingConnectionPool.from_url(
                    plain, max_connections=max_connections, timeout=timeout,
                    socket_timeout=timeout, socket_connect_timeout=min(timeout, 1.0))  # the URL may override
                client = aredis.Redis(connection_pool=pool)
                await client.ping()
        except RedisError as exc:
            raise StoreError(f"{redact(url)}: cannot connect: {exc}") from exc
        try:
            self = cls(url, client, cluster, params)
            self.durability = await self._server_durability()
            self._durability_read = time.monotonic()
        except BaseException:
            await client.aclose()
            raise
        return self

    async def _server_durability(self) -> str:
        """``always`` when every primary runs AOF with appendfsync always."""
        try:
            if self.cluster:
                replies = await self._r.config_get("append*", target_nodes=RedisCluster.PRIMARIES)
                configs = list(replies.values()) if isinstance(replies, dict) and "appendonly" not in replies else [replies]
            else:
                configs = [await self._r.config_get("append*")]
        except ResponseError:
            return "unknown"  # CONFIG disabled (managed Redis): cannot tell
        modes = set()
        for cfg in configs:
            cfg = {_s(k): _s(v) for k, v in cfg.items()}
            modes.add(cfg.get("appendfsync", "?") if cfg.get("appendonly") == "yes" else "no-aof")
        return modes.pop() if len(modes) == 1 else "mixed"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._reader.aclose()
        await self._allocator.aclose()
        await self._r.aclose()

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -------------------------------------------------------------------------

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        """MGET; on a Cluster one MGET per slot, all sent as one pipeline (one connection
        and one round trip per node, however many GTINs the batch touches)."""
        values: list[bytes | None]
        if not self.cluster:
            values = await self._r.execute_command("MGET", *keys)
            return values
        groups: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(key_slot(k.encode()), []).append(i)
        if len(groups) == 1:
            values = await self._r.execute_command("MGET", *keys)
            return values
        pipe = self._r.pipeline()
        for indexes in groups.values():
            pipe.execute_command("MGET", *[keys[i] for i in indexes])
        values = [None] * len(keys)
        for indexes, got in zip(groups.values(), await pipe.execute()):
            for i, v in zip(indexes, got):
                values[i] = v
        return values

    async def _script(
        self,
        name: str,
        gtin: str,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        actor: Actor,
        action: str,
        subject: str,
        detail: Mapping[str, Any] | bytes,
        kind: str,
    ) -> list[Any]:
        """Run a mutating script with the audit/version/feed tail (see ``_TAIL``)."""
        g = self.keys.g(gtin)
        all_keys = [g + "audit", g + "ver", *keys]
        if not self.cluster:
            all_keys.append(self.keys.feed)
        packed = detail if isinstance(detail, bytes) else msgpack.packb(dict(detail))
        head = (codec.to_ms(now_utc()), actor.role, actor.principal, action, subject, packed, gtin, kind, self._feed_maxlen)
        reply: list[Any] = await self._scripts[name](keys=all_keys, args=[*head, *args])
        reply[0] = _s(reply[0])
        if self.cluster and reply[0] == "ok":
            await self._r.xadd(
                self.keys.feed, {"g": gtin, "k": kind, "s": subject, "v": reply[-1]},
                maxlen=self._feed_maxlen, approximate=True,
            )
        return reply

    # -- units --------------------------------------------------------------------------

    async def get_unit(self, gtin: str, serial: str) -> Unit | None:
        check_unit_key(gtin, serial)
        if self._closed:
            raise StoreError(f"{self.url}: store is closed")
        key = self.keys.unit(gtin, serial)
        blob = await self._reader.get(key)
        return None if blob is None else codec.decode_unit(blob, gtin, serial, key)

    @_guard
    async def get_units(self, keys: Sequence[tuple[str, str]]) -> list[Unit | None]:
        for gtin, serial in keys:
            check_unit_key(gtin, serial)
        names = [self.keys.unit(g, s) for g, s in keys]
        blobs = await self._mget(names) if names else []
        return [
            None if b is None else codec.decode_unit(b, g, s, k) for (g, s), k, b in zip(keys, names, blobs)
        ]

    async def unit_keys(self, chunk: int = 10_000) -> AsyncIterator[list[tuple[str, str]]]:
        # SCAN walks every primary of a cluster (redis-py scan_iter does); unit keys are
        # "<prefix>:{<gtin>}:u:<serial>" and a serial may itself contain ':'.
        pattern = f"{self.keys.p}:{{*}}:u:*"
        out: list[tuple[str, str]] = []
        try:
            async for key in self._r.scan_iter(match=pattern, count=1000):
                text = _s(key)
                head, _, serial = text.partition("}:u:")
                out.append((head.rpartition("{")[2], serial))
                if len(out) >= chunk:
                    yield out
                    out = []
        except RedisError as exc:
            raise StoreError(f"{redact(self.url)}: scan failed: {exc}") from exc
        if out:
            yield out

    @_guard
    async def get_events(self, gtin: str, serial: str) -> list[Event]:
        check_unit_key(gtin, serial)
        key = f"{self.keys.g(gtin)}e:{serial}"
        return [codec.decode_event(b, f"{key}[{i}]") for i, b in enumerate(await self._r.lrange(key, 0, -1))]

    @_guard
    async def get_dpp(self, gtin: str, serial: str) -> Mapping[str, Any] | None:
        unit = await self.get_unit(gtin, serial)
        if unit is None or unit.dpp_version is None:
            return None
        key = f"{self.keys.g(gtin)}e:{serial}"
        blob = await self._r.lindex(key, unit.dpp_version - 1)
        if blob is None:
            raise CorruptRecord(f"{key}[{unit.dpp_version - 1}]", "the DPP event is missing")
        return codec.decode_event(blob, f"{key}[{unit.dpp_version - 1}]").data

    @_guard
    async def append_event(
        self,
        gtin: str,
        serial: str,
        event: Event,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        origin: Unit | None = None,
        personal: PersonalData | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Appended:
        check_unit_key(gtin, serial)
        event = check_event(event)
        idem = check_idempotency_key(idempotency_key)
        owner = personal_owner(event, personal)
        digest = event_digest(event) if idem else ""
        extra = audit_detail({}, audit)
        g = self.keys.g(gtin)
        head_key, idem_key = self.keys.unit(gtin, serial), f"{g}ik:{serial} {idem or ''}"
        keys = [head_key, f"{g}e:{serial}", idem_key, f"{g}pd:{serial}"]
        event_blob = codec.encode_event(event)
        personal_blob = codec.encode_personal(personal) if personal is not None else b""
        for _ in range(100):  # optimistic concurrency: retry when another writer won
            head, seen = await self._r.execute_command("MGET", head_key, idem_key)
            if seen is not None:
                return await self._replayed(gtin, serial, idem_key, seen, digest)
            current = None if head is None else codec.decode_unit(head, gtin, serial, head_key)
            unit = next_unit(current, origin, event, gtin, serial, expected_version)
            reply = await self._script(
                "append", gtin, keys,
                [
                    unit.version - 1, codec.encode_unit(unit), event_blob, "1" if idem else "0",
                    codec.encode_record(digest, unit.version), IDEMPOTENCY_TTL_SECONDS, owner or "", personal_blob,
                ],
                actor=event.actor, action=f"event:{event.type}", subject=serial,
                detail=audit_detail({"version": unit.version}, extra),
                kind="unit",
            )
            if reply[0] == "ok":
                return Appended(unit.version, unit)
            if reply[0] == "dup":
                return await self._replayed(gtin, serial, idem_key, reply[1], digest)
            if expected_version is not None:
                raise StaleVersion(f"unit {gtin}/{serial}", expected_version, reply[1])
        raise StoreError(f"unit {gtin}/{serial}: too much write contention, gave up after 100 tries")

    async def _replayed(self, gtin: str, serial: str, key: str, seen: bytes, digest: str) -> Appended:
        seen_digest, version = codec.decode_record(seen, key, 2)
        if seen_digest != digest:
            raise IdempotencyConflict(f"idempotency_key was used for a different event on {gtin}/{serial}")
        unit = await self.get_unit(gtin, serial)
        if unit is None:
            raise CorruptRecord(self.keys.unit(gtin, serial), "idempotency record without a unit record")
        return Appended(version, unit, True)

    @_guard
    async def get_personal_data(self, gtin: str, serial: str) -> dict[str, PersonalData]:
        check_unit_key(gtin, serial)
        key = f"{self.keys.g(gtin)}pd:{serial}"
        return {_s(o): codec.decode_personal(b, f"{key}/{_s(o)}") for o, b in (await self._r.hgetall(key)).items()}

    @_guard
    async def erase_personal_data(self, gtin: str, serial: str, owner: str, actor: Actor, reason: str) -> bool:
        check_unit_key(gtin, serial)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        reply = await self._script(
            "put_field", gtin, [f"{self.keys.g(gtin)}pd:{serial}"], [owner, "", "exists", ""],
            actor=actor, action="personal:erase", subject=serial, detail={"owner": owner, "reason": reason}, kind="personal",
        )
        status: str = reply[0]
        return status == "ok"

    # -- batches ----------------------------------------------------------------------

    @_guard
    async def allocate_range(
        self, gtin: str, profile: str, count: int, request_id: str, params_digest: str, *, actor: Actor,
        lot: str | None = None, expiry: date | None = None, line: str | None = None, site: str | None = None,
    ) -> Batch:
        draft = draft_batch(gtin, profile, count, request_id, params_digest, actor, BatchKind.MINTED, now_utc(), lot, expiry, line, site)
        return await self._allocate(draft, "allocate")

    async def check_durable(self) -> None:
        """Raise UnsafeDurability unless acknowledged writes survive a crash (or the URL accepted
        the risk). The server's setting is read again, at most every second while it is unsafe
        and every 10 s while it is safe, so ``CONFIG SET appendfsync always`` takes effect
        without a restart, and switching it off is noticed."""
        if self._relaxed:
            return
        now = time.monotonic()
        if now - self._durability_read >= (10.0 if self.durability == "always" else 1.0):
            self._durability_read = now
            try:
                async with asyncio.timeout(self._timeout):
                    self.durability = await self._server_durability()
            except (RedisError, TimeoutError):
                pass  # unreachable: the write itself will say so
        if self.durability != "always":
            raise UnsafeDurability(durability_advice(self.url, self.durability))

    async def _allocate(self, draft: Batch, action: str) -> Batch:
        await self.check_durable()
        reply = await self._allocator.get((draft, action))
        status = _s(reply[0])
        g = self.keys.g(draft.gtin)
        if status == "dup":
            bid = _s(reply[1])
            if reply[2] is None:
                raise CorruptRecord(f"{g}batches/{bid}", "allocation request points to a missing batch")
            return same_request(codec.decode_batch(reply[2], bid, f"{g}batches/{bid}"), draft.params_digest)
        if status == "full":
            raise InvalidInput("count", f"the counter of {draft.gtin}/{draft.profile} would pass {MAX_COUNTER}")
        bid = _s(reply[1])
        return replace(draft, id=bid, start=int(bid.rsplit(".", 1)[1]))

    async def _allocate_many(self, requests: list[tuple[Batch, str]]) -> list[list[Any]]:
        """One script per GTIN for all allocations waiting this loop turn (see ``_ALLOCATE``):
        the per-command cost of redis-py, and the AOF fsync, are paid once per batch."""
        by_gtin: dict[str, list[int]] = {}
        for i, (draft, _) in enumerate(requests):
            by_gtin.setdefault(draft.gtin, []).append(i)
        replies: list[list[Any]] = [[]] * len(requests)
        at = codec.to_ms(now_utc())

        async def run(gtin: str, indexes: list[int]) -> None:
            g = self.keys.g(gtin)
            keys = [g + "audit", g + "ver", g + "req", g + "batches"]
            args: list[Any] = [len(indexes), gtin, at, self._feed_maxlen, MAX_COUNTER]
            for i in indexes:
                d, action = requests[i]
                keys += [f"{g}ctr:{d.profile}", f"{g}rng:{d.profile}"]
                args += [d.request_id, d.count, d.profile, codec.encode_batch(d), d.created_by.role, d.created_by.principal, action]
            if not self.cluster:
                keys.append(self.keys.feed)
            got = await self._scripts["allocate"](keys=keys, args=args)
            if self.cluster:
                done = [r for r in got if _s(r[0]) == "ok"]
                if done:
                    pipe = self._r.pipeline()
                    for r in done:
                        pipe.xadd(self.keys.feed, {"g": gtin, "k": "batch", "s": _s(r[1]), "v": r[2]},
                                  maxlen=self._feed_maxlen, approximate=True)
                    await pipe.execute()
            for i, r in zip(indexes, got):
                replies[i] = r

        await asyncio.gather(*(run(g, ix) for g, ix in by_gtin.items()))
        return replies

    @_guard
    async def import_serials(
        self, gtin: str, profile: str, serials: Sequence[str], request_id: str, params_digest: str, *, actor: Actor,
        lot: str | None = None, expiry: date | None = None, line: str | None = None, site: str | None = None,
    ) -> Batch:
        serials = check_import_serials(serials)
        draft = draft_batch(gtin, profile, len(serials), request_id, params_digest, actor, BatchKind.IMPORTED, now_utc(), lot, expiry, line, site)
        keys = [self.keys.imported(gtin, s) for s in serials]
        # Refuse serials another batch holds before reserving anything; the per-chunk
        # script re-checks atomically against a concurrent import.
        existing = await self._r.execute_command("HGET", self.keys.g(gtin) + "req", request_id)
        for i in range(0, len(keys), _IMPORT_CHUNK):
            for serial, held in zip(serials[i : i + _IMPORT_CHUNK], await self._mget(keys[i : i + _IMPORT_CHUNK])):
                if held is not None and _s(held) != _s(existing or b""):
                    raise DuplicateSerial("serials", f"{serial!r} is already imported in batch {_s(held)}")
        batch = await self._allocate(draft, "import")
        for i in range(0, len(keys), _IMPORT_CHUNK):  # a retry with the same request id completes this
            reply = await self._scripts["import"](keys=keys[i : i + _IMPORT_CHUNK], args=[batch.id])
            if _s(reply[0]) == "taken":
                raise DuplicateSerial("serials", f"{serials[i + reply[1] - 1]!r} is already imported in batch {_s(reply[2])}")
        return batch

    async def find_imported(self, gtin: str, serial: str) -> str | None:
        check_unit_key(gtin, serial)
        if self._closed:
            raise StoreError(f"{self.url}: store is closed")
        blob = await self._reader.get(self.keys.imported(gtin, serial))
        return None if blob is None else _s(blob)

    @_guard
    async def get_batch(self, batch_id: str) -> Batch | None:
        gtin = parse_batch_id(batch_id)[0]
        key = self.keys.g(gtin) + "batches"
        blob = await self._r.hget(key, batch_id)
        return None if blob is None else codec.decode_batch(blob, batch_id, f"{key}/{batch_id}")

    @_guard
    async def list_batches(self, gtin: str, profile: str | None = None) -> list[Batch]:
        check_gtin_key(gtin)
        if profile is not None:
            check_name(profile, "profile")
        key = self.keys.g(gtin) + "batches"
        batches = [codec.decode_batch(b, _s(i), f"{key}/{_s(i)}") for i, b in (await self._r.hgetall(key)).items()]
        return sorted((b for b in batches if profile is None or b.profile == profile), key=lambda b: (b.profile, b.start))

    @_guard
    async def batch_ranges(self, gtin: str, profile: str) -> list[BatchRange]:
        check_gtin_key(gtin)
        check_name(profile, "profile")
        members = await self._r.zrange(f"{self.keys.g(gtin)}rng:{profile}", 0, -1)
        out = []
        for m in members:
            start, count, bid = _s(m).split(" ", 2)
            out.append(BatchRange(int(start), int(count), bid))
        return out

    @_guard
    async def find_batch_by_counter(self, gtin: str, profile: str, counter: int) -> Batch | None:
        check_gtin_key(gtin)
        check_name(profile, "profile")
        if not isinstance(counter, int) or counter < 0 or counter > MAX_COUNTER:
            raise InvalidInput("counter", f"expected 0..{MAX_COUNTER}, got {counter!r}")
        g = self.keys.g(gtin)
        reply = await self._scripts["find_batch"](keys=[f"{g}rng:{profile}", g + "batches"], args=[f"({counter + 1:016d}"])
        if not reply:
            return None
        start, count, bid, blob = int(reply[0]), int(reply[1]), _s(reply[2]), reply[3]
        if counter >= start + count:
            return None
        if blob is None:
            raise CorruptRecord(f"{g}batches/{bid}", "range without a batch record")
        return codec.decode_batch(blob, bid, f"{g}batches/{bid}")

    @_guard
    async def set_batch_status(self, batch_id: str, status: BatchStatus, actor: Actor, reason: str) -> Batch:
        gtin = parse_batch_id(batch_id)[0]
        status = BatchStatus(status)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        key = self.keys.g(gtin) + "batches"
        for _ in range(100):
            blob = await self._r.hget(key, batch_id)
            if blob is None:
                raise NotFound(f"no batch {batch_id}")
            batch = codec.decode_batch(blob, batch_id, f"{key}/{batch_id}")
            check_status_move(batch, status)
            new = replace(batch, status=status, updated_at=now_utc(), status_reason=reason)
            reply = await self._script(
                "put_field", gtin, [key], [batch_id, codec.encode_batch(new), "cas", blob],
                actor=actor, action=f"batch:{status}", subject=batch_id, detail={"reason": reason}, kind="batch",
            )
            if reply[0] == "ok":
                return new
        raise StoreError(f"batch {batch_id}: too much write contention")

    # -- line state ---------------------------------------------------------------------

    @_guard
    async def get_line_state(self, batch_id: str) -> LineState | None:
        gtin = parse_batch_id(batch_id)[0]
        key = f"{self.keys.g(gtin)}line:{batch_id}"
        blob = await self._r.hget(key, "s")
        return None if blob is None else decode_state(blob, key)

    @_guard
    async def apply_line_reports(self, batch_id: str, reports: Sequence[LineReport], actor: Actor) -> list[LineSummary]:
        gtin = parse_batch_id(batch_id)[0]
        check_actor(actor, "actor")
        check_report_ids(reports)
        g = self.keys.g(gtin)
        state_key, reports_key = f"{g}line:{batch_id}", f"{g}lrep:{batch_id}"
        ids = [r.report_id for r in reports]
        for _ in range(100):
            pipe = self._r.pipeline(transaction=False) if not self.cluster else self._r.pipeline()
            pipe.hmget(reports_key, ids)
            pipe.hmget(state_key, ["v", "s"])
            pipe.hget(g + "batches", batch_id)
            seen, (version, blob), batch_blob = await pipe.execute()
            out: list[LineSummary] = []
            records: list[Any] = []
            state: LineState | None = None
            for report, stored in zip(reports, seen):
                if stored is not None:
                    out.append(same_report(decode_report(stored, f"{reports_key}/{report.report_id}"), report))
                    continue
                if state is None:
                    batch = None if batch_blob is None else codec.decode_batch(batch_blob, batch_id, f"{g}batches/{batch_id}")
                    batch = check_line_batch(batch, batch_id)
                    state = LineState.empty(batch.count) if blob is None else decode_state(blob, state_key)
                state, summary, affected = apply_report(state, report)
                records += [report.report_id, encode_report(state.version, report, summary, affected, actor)]
                out.append(summary)
            if state is None:
                return out  # every report a replay
            applied = [s for s in out if not s.replayed]
            detail = dict(applied[0]._asdict()) if len(applied) == 1 else {"reports": len(applied)}
            reply = await self._script(
                "line_report", gtin, [state_key, reports_key],
                [_s(version or b"0"), encode_state(state), state.version, *records],
                actor=actor, action=f"line:{applied[0].step}" if len(applied) == 1 else "line:reports",
                subject=batch_id, detail=detail, kind="line",
            )
            if reply[0] == "ok":
                return out
        raise StoreError(f"batch {batch_id}: too much write contention on its line state")

    @_guard
    async def line_reports(self, batch_id: str) -> list[StoredReport]:
        gtin = parse_batch_id(batch_id)[0]
        key = f"{self.keys.g(gtin)}lrep:{batch_id}"
        reports = [decode_report(blob, f"{key}/{_s(rid)}") for rid, blob in (await self._r.hgetall(key)).items()]
        return sorted(reports, key=lambda r: r.seq)

    # -- aggregation (twin.aggregation) -----------------------------------------------------

    def _agg(self, name: str) -> str:
        return f"{self.keys.p}:{{agg}}:{name}"

    async def _hmget(self, key: str, fields: Sequence[str]) -> list[bytes | None]:
        """HMGET of many fields as one msgpack blob each way (see ``_HMGET_PACKED``)."""
        if not fields:
            return []
        blob = await self._scripts["hmget_packed"](keys=[key], args=[msgpack.packb(list(fields), use_bin_type=False)])
        values = msgpack.unpackb(blob, raw=True) if blob else []
        return [None if v is False or v is None else v for v in values]

    async def _agg_snapshot(self, ops: Sequence[AggregationOp], assume_free: bool) -> tuple[Snapshot, dict[str, bytes | None]]:
        """What the plan needs. ``assume_free``: units to pack are taken as unpacked without
        reading them (the write checks each is absent, atomically; a unit packed meanwhile or
        before makes it answer 'stale', and the retry reads them to name the refusal)."""
        where_keys, parents, event_ids, listed = keys_to_read(ops)
        w = self._agg("w")
        snap = Snapshot()
        free: set[str] = set()
        if assume_free:
            free = {c.key for op in ops if op.action == ADD for c in op.children if not c.is_case} - parents
            free -= {c.key for op in ops if op.action != ADD for c in op.children}  # an unpack checks where they are
            where_keys -= free
        order = sorted(where_keys)
        plist, elist = sorted(parents), sorted(event_ids)
        flat = await self._hmget(w, order)
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(self._agg("m"), plist)
        pipe.hmget(self._agg("ed"), elist)
        pipe.hmget(self._agg("eb"), elist)
        for parent in sorted(listed):
            pipe.hgetall(self._agg(f"c:{parent}"))
        replies = await pipe.execute()
        raw_where: dict[str, bytes | None] = dict(zip(order, flat, strict=True))
        metas, digests, bodies = replies[:3]
        for parent in plist:  # the parents' ancestors, for the nesting check
            at = raw_where.get(parent)
            for _ in range(MAX_DEPTH):
                if at is None or _s(at) in raw_where:
                    break
                up = await self._r.hget(w, _s(at))
                raw_where[_s(at)] = up
                at = up
        snap.where = {k: None if v is None else _s(v) for k, v in raw_where.items()}
        snap.where.update(dict.fromkeys(free))
        snap.meta = {p: None if m is None else decode_meta(m) for p, m in zip(plist, metas, strict=True)}
        snap.events = {e: None if d is None else (_s(d), b) for e, d, b in zip(elist, digests, bodies, strict=True)}
        for parent, held in zip(sorted(listed), replies[3:], strict=True):
            snap.contents[parent] = {_s(k): _s(v) for k, v in held.items()}
        return snap, {p: m for p, m in zip(plist, metas, strict=True)}

    @_guard
    async def apply_aggregations(self, ops: Sequence[AggregationOp], actor: Actor) -> list[AggregationSummary]:
        summaries = await self._aggregate(ops, actor)
        await self._remember_unpacks(summaries)
        return summaries

    async def _remember_unpacks(self, summaries: Sequence[AggregationSummary]) -> None:
        """The parents the write's unpacks emptied children out of (twin.aggregation.history_entries),
        right after the checked write: queries find a child's events after it left. A process
        that dies in between leaves them out; the client, which had no answer, retries, and
        the replay (replays included here) writes them. Packs write nothing here."""
        ids = sorted({s.event_id for s in summaries if s.action == DELETE})
        if not ids:
            return
        events = [decode_event(b) for b in await self._hmget(self._agg("eb"), ids) if b is not None]
        w = _Writes(self._agg)
        w.key("h")
        items = [[w.key(f"hb:{key[len(BATCH_HISTORY):]}"), "", parent] if key.startswith(BATCH_HISTORY)
                 else [1, key, parent] for key, parent in history_entries(events)]
        if items:
            await self._scripts["remember_unpacks"](keys=w.keys, args=[msgpack.packb(items, use_bin_type=False)])

    async def _aggregate(self, ops: Sequence[AggregationOp], actor: Actor) -> list[AggregationSummary]:
        check_actor(actor, "actor")
        check_ops(ops)
        for attempt in range(100):
            snap, raw_meta = await self._agg_snapshot(ops, assume_free=attempt == 0)
            try:
                changes = plan(ops, snap, (actor.role, actor.principal))
            except AggregationConflict:
                if attempt == 0:
                    continue  # refused on what was taken, not read: read everything and plan again
                raise
            if not changes.events:
                return changes.summaries  # every op a replay
            w = _Writes(self._agg)
            k, seg = w.key, w.seg

            # checks: everything the plan read is as it was read. Children packed that were
            # read (or taken) as unpacked are checked by their 'H' write segment itself.
            moved = _grouped(changes.where)
            fresh = {c for children in moved.values() for c in children if snap.where.get(c, "") is None}
            absent = [c for c, p in snap.where.items() if p is None and c not in fresh]
            present = [x for c, p in snap.where.items() if p is not None for x in (c, p)]
            for parent, held in snap.contents.items():
                present += [x for c in held for x in (c, parent)]
            seg("A", k("w"), absent)
            seg("E", k("w"), present, 2)
            seg("A", k("m"), [p for p, m in raw_meta.items() if m is None])
            seg("E", k("m"), [x for p, m in raw_meta.items() if m is not None for x in (p, m)], 2)
            seg("A", k("ed"), list(changes.events))
            # writes
            for parent, children in moved.items():
                for op, part in (("H", [c for c in children if c in fresh]), ("G", [c for c in children if c not in fresh])):
                    if part:
                        seg(op, k("w"), [parent, *part])
            seg("D", k("w"), [c for c, p in changes.where.items() if p is None])
            for parent, changed in changes.contents.items():
                for batch, children in _grouped(changed).items():
                    seg("G", k(f"c:{parent}"), [batch, *children])
                seg("D", k(f"c:{parent}"), [c for c, b in changed.items() if b is None])
            for (batch, parent), delta in changes.batch_counts.items():
                if delta:
                    seg("I", k(f"bp:{batch}"), [parent, delta], 2)
            seg("S", k("m"), [x for p, m in changes.meta.items() for x in (p, encode_meta(m))], 2)
            seg("S", k("ed"), [x for e, (d, _) in changes.events.items() for x in (e, d)], 2)
            seg("S", k("eb"), [x for e, (_, b) in changes.events.items() for x in (e, b)], 2)
            for e, parent in changes.event_parents.items():
                seg("R", k(f"pe:{parent}"), [e])
            for s in changes.summaries:
                if not s.replayed:
                    seg("X", k("audit"), ["t", codec.to_ms(now_utc()), "r", actor.role, "p", actor.principal,
                                          "a", f"aggregation:{s.action.lower()}", "s", s.parent,
                                          "d", msgpack.packb(s._asdict())], 2)
            reply = await self._scripts["aggregate"](keys=w.keys, args=[msgpack.packb(w.args, use_bin_type=False)])
            if _s(reply[0]) == "ok":
                return changes.summaries
        raise StoreError("aggregation: too much write contention")

    @_guard
    async def get_aggregation(self, sscc: str) -> Aggregate | None:
        check_sscc(sscc)
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(self._agg("m"), sscc)
        pipe.hgetall(self._agg(f"c:{sscc}"))
        pipe.hget(self._agg("w"), sscc)
        meta, held, up = await pipe.execute()
        if meta is None:
            return None
        children = tuple(sorted((Child(_s(c), _s(b)) for c, b in held.items()), key=lambda c: c.key))
        return Aggregate(sscc, decode_meta(meta), children, None if up is None else _s(up))

    @_guard
    async def aggregation_parents(self, batch_ids: Sequence[str]) -> list[str]:
        found: set[str] = set()
        ids = sorted(set(batch_ids))
        if ids:
            pipe = self._r.pipeline(transaction=False)
            for b in ids:
                pipe.hkeys(self._agg(f"bp:{b}"))
            for parents in await pipe.execute():
                found.update(_s(p) for p in parents)
        frontier = set(found)
        for _ in range(MAX_DEPTH):
            if not frontier:
                break
            ups = await self._hmget(self._agg("w"), sorted(frontier))
            frontier = {_s(u) for u in ups if u is not None} - found
            found |= frontier
        return sorted(found)

    @_guard
    async def aggregation_events(self, sscc: str) -> list[StoredAggregation]:
        check_sscc(sscc)
        ids = [_s(e) for e in await self._r.lrange(self._agg(f"pe:{sscc}"), 0, -1)]
        bodies = await self._hmget(self._agg("eb"), ids) if ids else []
        return [decode_event(b) for b in bodies if b is not None]

    @_guard
    async def aggregation_events_of(self, children: Sequence[Child] = (),
                                    batches: Sequence[str] = ()) -> list[StoredAggregation]:
        wanted, of = check_lookup(children, batches)
        keys = [c.key for c in wanted]
        parents: set[str] = set()
        now = await self._hmget(self._agg("w"), keys)  # where the children are now
        past = await self._hmget(self._agg("h"), keys)  # where they were
        parents.update(_s(p) for p in now if p is not None)
        parents.update(p for v in past if v is not None for p in _s(v).split())
        if of:
            pipe = self._r.pipeline(transaction=False)
            for b in of:
                pipe.hkeys(self._agg(f"bp:{b}"))
                pipe.smembers(self._agg(f"hb:{b}"))
            for found in await pipe.execute():
                parents.update(_s(p) for p in found)
        if not parents:
            return []
        pipe = self._r.pipeline(transaction=False)
        for p in sorted(parents):
            pipe.lrange(self._agg(f"pe:{p}"), 0, -1)
        ids = sorted({_s(e) for listed in await pipe.execute() for e in listed})
        bodies = await self._hmget(self._agg("eb"), ids)
        return naming([decode_event(b) for b in bodies if b is not None], keys, of)

    # -- overlays -------------------------------------------------------------------------

    @_guard
    async def put_overlay(
        self, gtin: str, kind: str, scope: Scope, actor: Actor, reason: str, *, idempotency_key: str | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> Overlay:
        check_gtin_key(gtin)
        now = now_utc()
        overlay = Overlay(
            new_overlay_id(now), gtin, check_kind(kind), check_scope(scope), check_text(reason, "reason", max_len=1000),
            check_actor(actor, "actor"), now,
        )
        idem = check_idempotency_key(idempotency_key)
        detail = audit_detail({"kind": kind, "reason": reason}, audit)
        g = self.keys.g(gtin)
        if idem is not None:
            reply = await self._script(
                "put_overlay", gtin, [g + "ovl", f"{g}iko:{idem}"],
                [overlay.id, codec.encode_overlay(overlay), IDEMPOTENCY_TTL_SECONDS],
                actor=actor, action="overlay:put", subject=overlay.id, detail=detail, kind="overlay",
            )
            if reply[0] == "dup":
                if reply[2] is None:
                    raise CorruptRecord(f"{g}iko:{idem}", "points to a missing overlay")
                existing = codec.decode_overlay(reply[2], f"{g}ovl/{_s(reply[1])}")
                return same_overlay(existing, overlay.kind, overlay.scope, overlay.reason)
            return overlay
        reply = await self._script(
            "put_field", gtin, [g + "ovl"], [overlay.id, codec.encode_overlay(overlay), "new", ""],
            actor=actor, action="overlay:put", subject=overlay.id, detail=detail, kind="overlay",
        )
        if reply[0] != "ok":
            raise StoreError(f"overlay id {overlay.id} collided; retry")
        return overlay

    @_guard
    async def lift_overlay(
        self, gtin: str, overlay_id: str, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> Overlay:
        check_gtin_key(gtin)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        detail = audit_detail({"reason": reason}, audit)
        key = self.keys.g(gtin) + "ovl"
        for _ in range(100):
            blob = await self._r.hget(key, overlay_id)
            if blob is None:
                raise NotFound(f"no overlay {overlay_id} on {gtin}")
            overlay = codec.decode_overlay(blob, f"{key}/{overlay_id}")
            if overlay.lifted is not None:
                raise IllegalTransition("overlay:lift", None, f"overlay {overlay_id} was lifted at {overlay.lifted.at.isoformat()}")
            new = replace(overlay, lifted=Lift(now_utc(), actor, reason))
            reply = await self._script(
                "put_field", gtin, [key], [overlay_id, codec.encode_overlay(new), "cas", blob],
                actor=actor, action="overlay:lift", subject=overlay_id, detail=detail, kind="overlay",
            )
            if reply[0] == "ok":
                return new
        raise StoreError(f"overlay {overlay_id}: too much write contention")

    @_guard
    async def get_overlays(self, gtin: str, *, include_lifted: bool = False) -> tuple[Overlay, ...]:
        check_gtin_key(gtin)
        key = self.keys.g(gtin) + "ovl"
        items = sorted((await self._r.hgetall(key)).items())
        overlays = (codec.decode_overlay(b, f"{key}/{_s(i)}") for i, b in items)
        return tuple(o for o in overlays if include_lifted or o.lifted is None)

    # -- links --------------------------------------------------------------------------

    @_guard
    async def put_links(self, anchor: Anchor, links: Sequence[LinkRecord], actor: Actor) -> int:
        links = check_links(anchor, links)
        check_actor(actor, "actor")
        g, subject = anchor.gtin, anchor.subject
        reply = await self._script(
            "put_field", g, [self.keys.g(g) + "lnk"], [subject, codec.encode_links(links) if links else "", "any", ""],
            actor=actor, action="links:put" if links else "links:delete", subject=subject, detail={"count": len(links)},
            kind="links",
        )
        version: int = reply[1]
        return version

    @_guard
    async def put_links_many(self, entries: Sequence[tuple[Anchor, Sequence[LinkRecord]]], actor: Actor) -> int:
        by_gtin = check_link_entries(entries)
        check_actor(actor, "actor")

        async def put(gtin: str, items: list[tuple[str, tuple[LinkRecord, ...]]]) -> None:
            for i in range(0, len(items), 1000):  # bound one script's run time
                chunk = items[i : i + 1000]
                args: list[Any] = []
                for subject, links in chunk:
                    args += [subject, codec.encode_links(links) if links else ""]
                await self._script(
                    "put_many", gtin, [self.keys.g(gtin) + "lnk"], args,
                    actor=actor, action="links:put-many", subject="*", detail={"count": len(chunk)}, kind="links",
                )

        await asyncio.gather(*(put(g, items) for g, items in by_gtin.items()))
        return sum(len(items) for items in by_gtin.values())

    @_guard
    async def get_links(self, anchor: Anchor) -> tuple[LinkRecord, ...]:
        check_anchor(anchor)
        key = self.keys.g(anchor.gtin) + "lnk"
        blob = await self._r.hget(key, anchor.subject)
        return () if blob is None else codec.decode_links(blob, f"{key}/{anchor.subject}")

    @_guard
    async def get_link_chain(self, gtin: str, lot: str | None, serial: str | None) -> LinkChain:
        check_chain_key(gtin, lot, serial)
        key = self.keys.g(gtin) + "lnk"
        subjects = [f"ser:{serial}" if serial else "-", f"lot:{lot}" if lot else "-", ""]
        blobs = await self._r.hmget(key, subjects)
        return LinkChain(*(() if b is None else codec.decode_links(b, f"{key}/{s}") for s, b in zip(subjects, blobs)))

    @_guard
    async def list_link_anchors(self, gtin: str) -> list[Anchor]:
        check_gtin_key(gtin)
        return [anchor_from_subject(gtin, _s(s)) for s in sorted(await self._r.hkeys(self.keys.g(gtin) + "lnk"))]

    # -- scans ------------------------------------------------------------------------

    @_guard
    async def append_scans(self, scans: Sequence[ScanEvent]) -> int:
        chunks = chunks_of(scans)
        if not scans:
            return 0
        pipe = self._r.pipeline(transaction=False) if not self.cluster else self._r.pipeline()
        for gtin, _, blob in chunks:
            key = self.keys.g(gtin) + "scans"
            if self._scan_maxlen:
                pipe.xadd(key, {"b": blob}, maxlen=self._scan_maxlen, approximate=True)
            else:
                pipe.xadd(key, {"b": blob})
        await pipe.execute()
        return len(scans)

    async def scans_since(self, since_ms: int) -> AsyncIterator[list[ScanEvent]]:
        # a chunk's stream id is the time it was written, after every scan in it: chunks
        # written before ``since_ms`` hold only older scans
        try:
            keys = sorted({_s(k) async for k in self._r.scan_iter(match=f"{self.keys.p}:{{*}}:scans", count=1000)})
            for key in keys:
                gtin = key.partition("{")[2].partition("}")[0]
                lower = f"{max(since_ms, 0)}-0"
                while True:
                    entries = await self._r.xrange(key, lower, "+", count=64)
                    for entry_id, fields in entries:
                        found = chunk_scans(gtin, fields[b"b"], f"{key}/{_s(entry_id)}", since_ms)
                        if found:
                            yield found
                    if len(entries) < 64:
                        break
                    lower = "(" + _s(entries[-1][0])
        except RedisError as exc:
            raise StoreError(f"{redact(self.url)}: reading scans failed: {exc}") from exc

    @_guard
    async def scan_history(self, gtin: str, serial: str, limit: int = 50, *, max_chunks: int = 64) -> list[ScanEvent]:
        """Newest first, reading back at most ``max_chunks`` stored chunks of the GTIN's log:
        recent history, not an archive (export the stream for analytics)."""
        check_unit_key(gtin, serial)
        check_limit(limit, 10_000)
        key = self.keys.g(gtin) + "scans"
        found: list[ScanEvent] = []
        upper, read = "+", 0
        while len(found) < limit and read < max_chunks:
            entries = await self._r.xrevrange(key, upper, "-", count=16)
            if not entries:
                break
            for entry_id, fields in entries:
                read += 1
                found += unit_scans(gtin, serial, fields[b"b"], f"{key}/{_s(entry_id)}")[: limit - len(found)]
                if len(found) == limit or read == max_chunks:
                    break
            upper = "(" + _s(entries[-1][0])
        return found

    async def scan_chunks(self, gtin: str, since_ms: int, until_ms: int) -> AsyncIterator[list[ScanChunk]]:
        # stream ids are the write time in ms, never earlier than a scan they hold: every
        # chunk written since since_ms (less the slack for clock steps) may hold the period's
        # scans, however late it was written; until_ms cannot bound the read
        check_gtin_key(gtin)
        key = self.keys.g(gtin) + "scans"
        lower, upper = str(max(0, since_ms - CHUNK_SLACK_MS)), "+"
        while True:
            try:
                entries = await self._r.xrange(key, lower, upper, count=16)
            except RedisError as exc:
                raise StoreError(f"{redact(self.url)}: scan read failed: {exc}") from exc
            if not entries:
                return
            yield [ScanChunk(gtin, int(_s(i).partition("-")[0]), f[b"b"]) for i, f in entries]
            if len(entries) < 16:
                return
            lower = "(" + _s(entries[-1][0])

    async def gtins(self) -> list[str]:
        # every GTIN's data carries its version key or a scan stream: SCAN for both
        found: set[str] = set()
        try:
            for suffix in ("ver", "scans", "batches"):
                async for key in self._r.scan_iter(match=f"{self.keys.p}:{{*}}:{suffix}", count=1000):
                    found.add(_s(key).rpartition("}")[0].rpartition("{")[2])
        except RedisError as exc:
            raise StoreError(f"{redact(self.url)}: scan failed: {exc}") from exc
        return sorted(g for g in found if g.isdigit())

    # -- journeys: pending confirmations, tokens, rate counters ----------------------------

    def _audit_head(self, actor: Actor, action: str, subject: str, detail: Mapping[str, Any]) -> list[Any]:
        return [codec.to_ms(now_utc()), actor.role, actor.principal, action, subject, msgpack.packb(dict(detail))]

    @_guard
    async def put_pending(
        self, gtin: str, serial: str, pending_id: str, record: Mapping[str, Any], expires_at: datetime, actor: Actor,
        *, audit: Mapping[str, Any] | None = None,
    ) -> None:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")
        body = journey_record(record, "record")
        until = expiry_ms(expires_at)
        check_actor(actor, "actor")
        detail = audit_detail({"pending": pending_id}, audit)
        g = self.keys.g(gtin)
        ttl = max(0, until - codec.to_ms(now_utc()))
        await self._scripts["put_pending"](
            keys=[g + "audit", f"{g}pend:{serial}"],
            args=[*self._audit_head(actor, "pending:put", serial, detail), pending_id, body, until, ttl],
        )

    @_guard
    async def get_pending(self, gtin: str, serial: str, pending_id: str) -> dict[str, Any] | None:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")
        body, until, attempts = await self._r.hmget(f"{self.keys.g(gtin)}pend:{serial}",
                                                    [pending_id, f"{pending_id}#x", f"{pending_id}#n"])
        if body is None or until is None or int(until) <= codec.to_ms(now_utc()):
            return None
        return {**orjson.loads(body), "attempts": int(attempts or 0)}

    @_guard
    async def fail_pending(self, gtin: str, serial: str, pending_id: str) -> int:
        check_unit_key(gtin, serial)
        check_record_id(pending_id, "pending_id")
        return int(await self._scripts["fail_pending"](keys=[f"{self.keys.g(gtin)}pend:{serial}"],
                                                       args=[pending_id, codec.to_ms(now_utc())]))

    @_guard
    async def record_token(
        self, token_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        check_record_id(token_id, "token_id")
        body = journey_record(record, "record")
        until = token_expiry_ms(record)
        check_actor(actor, "actor")
        detail = audit_detail({"role": str(record.get("role", ""))[:40], "for": str(record.get("principal", ""))[:200]},
                              audit)
        reply = await self._scripts["record_token"](
            keys=[self.keys.tokens + "log", self.keys.tokens + f"t:{token_id}"],
            args=[*self._audit_head(actor, "token:issue", token_id, detail), body, until],
        )
        return orjson.loads(reply[1]), _s(reply[0]) == "dup"

    @_guard
    async def get_token(self, token_id: str) -> dict[str, Any] | None:
        check_record_id(token_id, "token_id")
        body = await self._r.get(self.keys.tokens + f"t:{token_id}")
        return None if body is None else orjson.loads(body)

    @_guard
    async def revoke_token(
        self, token_id: str, expires_at: datetime, actor: Actor, reason: str, *, audit: Mapping[str, Any] | None = None
    ) -> bool:
        check_record_id(token_id, "token_id")
        until = expiry_ms(expires_at)
        check_actor(actor, "actor")
        check_text(reason, "reason", max_len=1000)
        detail = audit_detail({"reason": reason}, audit)
        reply = await self._scripts["revoke_token"](
            keys=[self.keys.tokens + "log", self.keys.tokens + "revoked"],
            args=[*self._audit_head(actor, "token:revoke", token_id, detail), token_id, until],
        )
        return bool(int(reply))

    @_guard
    async def revoked_tokens(self) -> dict[str, datetime]:
        key = self.keys.tokens + "revoked"
        now = codec.to_ms(now_utc())
        out, expired = {}, []
        for token_id, ms in (await self._r.hgetall(key)).items():
            if int(ms) > now:
                out[_s(token_id)] = codec.from_ms(int(ms))
            else:
                expired.append(token_id)
        if expired:  # the token would be refused as expired anyway: forget it
            await self._r.hdel(key, *expired)
        return out

    @_guard
    async def token_log(self, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        check_limit(limit)
        key = self.keys.tokens + "log"
        entries = await self._r.xrange(key, "(" + _stream_cursor(after) if after else "-", "+", count=limit)
        return [
            AuditEntry(_s(i), codec.from_ms(int(f[b"t"])), Actor(_s(f[b"r"]), _s(f[b"p"])), _s(f[b"a"]), _s(f[b"s"]),
                       msgpack.unpackb(f[b"d"]) if f.get(b"d") else {})
            for i, f in entries
        ]

    @_guard
    async def add_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, *, audit: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        check_record_id(key_id, "key_id")
        body = journey_record(record, "record")
        check_actor(actor, "actor")
        detail = audit_detail({}, audit)
        reply = await self._scripts["put_line_key"](
            keys=[self.keys.tokens + "log", self.keys.tokens + "lk"],
            args=[*self._audit_head(actor, "linekey:add", key_id, detail), key_id, body, "add"],
        )
        return orjson.loads(reply[1]), _s(reply[0]) == "dup"

    @_guard
    async def set_line_key(
        self, key_id: str, record: Mapping[str, Any], actor: Actor, action: str, *,
        audit: Mapping[str, Any] | None = None,
    ) -> None:
        check_record_id(key_id, "key_id")
        body = journey_record(record, "record")
        check_actor(actor, "actor")
        check_text(action, "action", max_len=40)
        detail = audit_detail({}, audit)
        reply = await self._scripts["put_line_key"](
            keys=[self.keys.tokens + "log", self.keys.tokens + "lk"],
            args=[*self._audit_head(actor, action, key_id, detail), key_id, body, "set"],
        )
        if _s(reply[0]) == "missing":
            raise NotFound(f"no line key {key_id}")

    @_guard
    async def get_line_key(self, key_id: str) -> dict[str, Any] | None:
        check_record_id(key_id, "key_id")
        body = await self._r.hget(self.keys.tokens + "lk", key_id)
        return None if body is None else orjson.loads(body)

    @_guard
    async def line_keys(self) -> list[dict[str, Any]]:
        found = await self._r.hgetall(self.keys.tokens + "lk")
        return [orjson.loads(found[k]) for k in sorted(found, key=_s)]

    @_guard
    async def count_hit(self, bucket: str, ttl_seconds: int) -> int:
        check_bucket(bucket)
        check_ttl(ttl_seconds)
        return int(await self._scripts["hit"](keys=[f"{self.keys.p}:rl:{bucket}"], args=[ttl_seconds * 1000]))

    # -- audit and feed -----------------------------------------------------------------

    @_guard
    async def audit(self, gtin: str, *, after: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        check_gtin_key(gtin)
        check_limit(limit)
        key = self.keys.g(gtin) + "audit"
        entries = await self._r.xrange(key, "(" + _stream_cursor(after) if after else "-", "+", count=limit)
        out = []
        for entry_id, f in entries:
            detail = msgpack.unpackb(f[b"d"]) if f.get(b"d") else {}
            out.append(
                AuditEntry(
                    _s(entry_id), codec.from_ms(int(f[b"t"])), Actor(_s(f[b"r"]), _s(f[b"p"])), _s(f[b"a"]), _s(f[b"s"]),
                    detail if isinstance(detail, dict) else {},
                )
            )
        return out

    @_guard
    async def gtin_version(self, gtin: str) -> int:
        check_gtin_key(gtin)
        value = await self._r.get(self.keys.g(gtin) + "ver")
        return int(value or 0)

    @_guard
    async def changes_cursor(self) -> str:
        try:
            info = await self._r.xinfo_stream(self.keys.feed)
        except ResponseError:  # no such key: the feed is empty
            return "0-0"
        return _s(info["last-generated-id"])

    @_guard
    async def changes(self, after: str, limit: int = 1000) -> ChangeBatch:
        """Feed entries after ``after``. The feed is only ever trimmed from the front, so the
        caller missed something exactly when the entry at its cursor is gone (or, from
        ``0-0``, when anything was trimmed at all): then ``reset`` is set."""
        check_limit(limit)
        cursor = _stream_cursor(after)
        feed = self.keys.feed
        pipe = self._r.pipeline(transaction=False) if not self.cluster else self._r.pipeline()
        pipe.xrange(feed, "(" + cursor, "+", count=limit)
        if cursor == "0-0":
            pipe.exists(feed)
        else:
            pipe.xrange(feed, cursor, cursor, count=1)
        entries, probe = await pipe.execute()
        if cursor != "0-0":
            reset = not probe
        elif probe:
            info = await self._r.xinfo_stream(feed)
            reset = int(info.get("entries-added", info["length"])) > int(info["length"])
        else:
            reset = False
        changes = tuple(Change(_s(i), _s(f[b"g"]), _s(f[b"k"]), _s(f[b"s"]), int(f[b"v"])) for i, f in entries)
        return ChangeBatch(changes[-1].cursor if changes else cursor, changes, reset)


def _stream_cursor(after: str | None) -> str:
    if after is None:
        return "0-0"
    if not isinstance(after, str) or not _id_ok(after):
        raise InvalidInput("after", f"expected a cursor this store returned, got {after!r}")
    return after


def _id_ok(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and seq.isdigit()


def seconds_param(params: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from the URL (``timeout=0.5``)."""
    value = params.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InvalidInput(f"store_url.{name}", f"expected seconds (0-3600), got {value!r}")
    return seconds


def _cluster_client(parts: Any, max_connections: int, timeout: float = 2.0) -> RedisCluster:
    """``redis+cluster://[user:pass@]h1:p1,h2:p2`` → RedisCluster with those seed nodes."""
    netloc = parts.netloc.rpartition("@")[2]
    nodes = []
    for hostport in netloc.split(","):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidInput("store_url", f"expected host:port in a cluster URL, got {hostport!r}")
        nodes.append(ClusterNode(host, int(port)))
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme.startswith("rediss"),
        max_connections=max_connections,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 1.0),
    )
