"""The Lua scripts that make every change to the shared state one atomic step in Redis.

Keys (a room by its canonical name, a nick folded to lower case, ``u`` a member's cluster-wide
id ``NODE/N``):

    cw:node:NODE   a node's lease (PX); gone = the node is dead
    cw:nodes       set of nodes that may hold members
    cw:nicks       hash  folded nick -> u          (uniqueness, §5.2; DIRECT's addressee)
    cw:nm:NODE     hash  u -> nick                 (what to clean up when NODE dies)
    cw:mr:U        set   rooms u is in
    cw:room:ROOM   hash  nick -> u                 (the roster)
    cw:seq:ROOM    the room's last seq (§8.1)
    cw:rooms       set   rooms that exist          (LIST)
    cw:cg          set   u congested now           (as ``cw:c`` said: for a node starting)

Channels: ``cw:r:ROOM`` carries the room's events, in the one order every node fans out;
``cw:n:NODE`` carries what is for one node: WHISPERs and ticket replies; ``cw:c``, to which
every node subscribes, carries every member's congestion news (``C`` below), so a DIRECT
sender is held behind a congested addressee on another node whatever rooms they share
(§12.3 SLOW-4). A script that makes a node wait publishes the reply ticket last, so the
node's subscriber sees it after every event the script published (one subscriber connection
gets messages in publish order).

Room events (header line, then the payload):

    D FIRST_SEQ U TICKET NICK \\n TEXT16...   messages FIRST_SEQ.. (each text a str16)
    J U NICK \\n                              U joined
    L U NICK REASON FLAGS \\n TEXT            U left; FLAGS 1: tell the others, 2: tell U
    C U 1|0 \\n                              U is congested now, or not any more (§12.3)
                                             (on ``cw:c`` too, for every node)

Node messages:

    T TICKET \\n PAYLOAD                      a script's reply, in stream order
    W U SENDER \\n TEXT                       a WHISPER for the local member U
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_PRELUDE = r"""
local function remove(u, nick, room, reason, flags, text)
  redis.call('HDEL', 'cw:room:' .. room, nick)
  redis.call('SREM', 'cw:mr:' .. u, room)
  redis.call('PUBLISH', 'cw:r:' .. room,
    'L ' .. u .. ' ' .. nick .. ' ' .. reason .. ' ' .. flags .. '\n' .. text)
  if redis.call('HLEN', 'cw:room:' .. room) == 0 then
    redis.call('DEL', 'cw:room:' .. room, 'cw:seq:' .. room)
    redis.call('SREM', 'cw:rooms', room)
  end
end
local function depart(node, u, nick, reason, flags, text)
  if redis.call('SREM', 'cw:cg', u) == 1 then
    redis.call('PUBLISH', 'cw:c', 'C ' .. u .. ' 0\n')
  end
  for _, room in ipairs(redis.call('SMEMBERS', 'cw:mr:' .. u)) do
    remove(u, nick, room, reason, flags, text)
  end
  redis.call('DEL', 'cw:mr:' .. u)
  local fold = string.lower(nick)
  if redis.call('HGET', 'cw:nicks', fold) == u then
    redis.call('HDEL', 'cw:nicks', fold)
  end
  redis.call('HDEL', 'cw:nm:' .. node, u)
end
local function reap(node, reason, text)
  local members = redis.call('HGETALL', 'cw:nm:' .. node)
  for i = 1, #members, 2 do
    depart(node, members[i], members[i + 1], reason, 1, text)
  end
  redis.call('DEL', 'cw:nm:' .. node, 'cw:node:' .. node)
  redis.call('SREM', 'cw:nodes', node)
end
local function join(u, nick, room)
  redis.call('HSET', 'cw:room:' .. room, nick, u)
  redis.call('SADD', 'cw:mr:' .. u, room)
  redis.call('SADD', 'cw:rooms', room)
  redis.call('PUBLISH', 'cw:r:' .. room, 'J ' .. u .. ' ' .. nick .. '\n')
end
local function roster(room)
  local seq = redis.call('GET', 'cw:seq:' .. room) or '0'
  return seq .. '\n' .. table.concat(redis.call('HKEYS', 'cw:room:' .. room), ' ')
end
local function reply(node, ticket, payload)
  redis.call('PUBLISH', 'cw:n:' .. node, 'T ' .. ticket .. '\n' .. payload)
end
local function alive(node)
  return redis.call('EXISTS', 'cw:node:' .. node) == 1
end
"""

_GONE = "return redis.error_reply('NODEGONE this node lease expired')"

#: ARGV: node, u, nick, room, ticket. 0: the nick is held; 1: registered (ticket: roster).
REGISTER = f"""
local node, u, nick, room, ticket = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not alive(node) then {_GONE} end
if redis.call('HSETNX', 'cw:nicks', string.lower(nick), u) == 0 then return 0 end
redis.call('HSET', 'cw:nm:' .. node, u, nick)
join(u, nick, room)
reply(node, ticket, roster(room))
return 1
"""

#: ARGV: node, u, nick, room, ticket. The ticket carries the roster (§6.2).
JOIN = f"""
local node, u, nick, room, ticket = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not alive(node) then {_GONE} end
if redis.call('SISMEMBER', 'cw:mr:' .. u, room) == 0 then join(u, nick, room) end
reply(node, ticket, roster(room))
return 1
"""

#: ARGV: node, u, nick, room, ticket. 0: not a member.
LEAVE = f"""
local node, u, nick, room, ticket = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not alive(node) then {_GONE} end
if redis.call('SISMEMBER', 'cw:mr:' .. u, room) == 0 then return 0 end
remove(u, nick, room, 0, 3, '')
reply(node, ticket, '')
return 1
"""

#: ARGV: node, u, nick, room, ticket, text16... The seqs and the event in one step (§8.1).
SEND = f"""
local node, u, nick, room, ticket = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not alive(node) then {_GONE} end
local n = #ARGV - 5
local last = redis.call('INCRBY', 'cw:seq:' .. room, n)
redis.call('PUBLISH', 'cw:r:' .. room, 'D ' .. string.format('%d', last - n + 1) .. ' ' .. u
  .. ' ' .. ticket .. ' ' .. nick .. '\\n' .. table.concat(ARGV, '', 6))
return last
"""

#: ARGV: node, u, nick, reason, flags, ticket, text. Nick released with the LEFTs (NICK-4).
DEPART = """
local node, u, nick, reason, flags, ticket, text = ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  ARGV[5], ARGV[6], ARGV[7]
depart(node, u, nick, reason, flags, text)
reply(node, ticket, '')
return 1
"""

#: ARGV: node, room, ticket. 0: no such room.
WHO = """
local node, room, ticket = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', 'cw:room:' .. room) == 0 then return 0 end
reply(node, ticket, roster(room))
return 1
"""

#: Every room and its member count, flat: name, count, name, count...
LIST = """
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', 'cw:rooms')) do
  out[#out + 1] = room
  out[#out + 1] = redis.call('HLEN', 'cw:room:' .. room)
end
return out
"""

#: ARGV: folded nick, sender nick, text. The addressee's u, or nil if nobody holds the nick.
DIRECT = """
local u = redis.call('HGET', 'cw:nicks', ARGV[1])
if not u then return false end
local node = string.match(u, '^(.*)/')
redis.call('PUBLISH', 'cw:n:' .. node, 'W ' .. u .. ' ' .. ARGV[2] .. '\\n' .. ARGV[3])
return u
"""

#: ARGV: u, 1|0, rooms... Congestion news (§12.3): on ``cw:c`` for every node (SLOW-4), and
#: to each room u is still in (SLOW-3). Never once u has departed (its ``depart`` said 0 and
#: left ``cw:cg``), nor in a room after its LEFT there: either would leave the others holding
#: their senders for a member gone.
CONGESTED = """
local u, on = ARGV[1], ARGV[2]
if redis.call('HEXISTS', 'cw:nm:' .. string.match(u, '^(.*)/'), u) == 0 then return 0 end
local changed
if on == '1' then changed = redis.call('SADD', 'cw:cg', u)
else changed = redis.call('SREM', 'cw:cg', u) end
if changed == 1 then redis.call('PUBLISH', 'cw:c', 'C ' .. u .. ' ' .. on .. '\\n') end
for i = 3, #ARGV do
  if redis.call('SISMEMBER', 'cw:mr:' .. u, ARGV[i]) == 1 then
    redis.call('PUBLISH', 'cw:r:' .. ARGV[i], 'C ' .. u .. ' ' .. on .. '\\n')
  end
end
return 1
"""

#: ARGV: node, ticket. The members congested now, as the ticket's payload (space-separated):
#: in stream order, so the news on ``cw:c`` after it is news to the node that asked.
CONGESTED_NOW = """
reply(ARGV[1], ARGV[2], table.concat(redis.call('SMEMBERS', 'cw:cg'), ' '))
return 1
"""

#: ARGV: node, lease ms. Take the lease and enter the node set.
START = """
if not redis.call('SET', 'cw:node:' .. ARGV[1], '1', 'PX', ARGV[2], 'NX') then return 0 end
redis.call('SADD', 'cw:nodes', ARGV[1])
return 1
"""

#: ARGV: reason, text. Reap every node whose lease has expired: its members' LEFTs go to
#: every room they were in, and their nicks are free, in one step. The nodes reaped.
SWEEP = """
local reaped = {}
for _, node in ipairs(redis.call('SMEMBERS', 'cw:nodes')) do
  if not alive(node) then
    reap(node, ARGV[1], ARGV[2])
    reaped[#reaped + 1] = node
  end
end
return reaped
"""

#: ARGV: node, reason, text. A node leaving the cluster on purpose (SIGTERM).
STOP = """
reap(ARGV[1], ARGV[2], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Script:
    name: str
    source: bytes
    sha: bytes


def _script(name: str, body: str) -> Script:
    source = (_PRELUDE + body).encode("utf-8")
    return Script(name, source, hashlib.sha1(source).hexdigest().encode("ascii"))


SCRIPTS = {
    name: _script(name, body)
    for name, body in {
        "register": REGISTER,
        "join": JOIN,
        "leave": LEAVE,
        "send": SEND,
        "depart": DEPART,
        "who": WHO,
        "list": LIST,
        "direct": DIRECT,
        "congested": CONGESTED,
        "congested_now": CONGESTED_NOW,
        "start": START,
        "sweep": SWEEP,
        "stop": STOP,
    }.items()
}
