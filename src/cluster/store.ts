/**
 * The cluster's directory: Redis (or Valkey) through Bun's built-in client. Every command fails fast when
 * Redis cannot be reached (no offline queue, a deadline per command), because the callers decide what an
 * unreachable directory means: an upgrade gets 503, a renewal is retried, a lease runs out.
 */

/** Redis keys: a room's lease (the owner's advertised URL), its lobby record, and the live nodes. */
export const leaseKey = (room: string): string => `scalesocket:room:${room}`;
export const infoKey = (room: string): string => `scalesocket:info:${room}`;
export const INFO_PATTERN = "scalesocket:info:*";
export const NODES_KEY = "scalesocket:nodes";

/**
 * Takes the lease if nobody holds it (`SET NX PX`), or extends it if this node already does; returns the holder
 * either way. One round trip, and atomic: nobody can take the key between the look and the claim.
 */
export const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return holder or ''`;

/**
 * Renews a batch: KEYS are n leases then their n lobby records, ARGV the node, the lease in ms and the n
 * records. A lease is extended (and its record written) only while this node holds it; 0 marks one lost.
 */
export const RENEW = `
local n = #KEYS / 2
local out = {}
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('SET', KEYS[n + i], ARGV[2 + i], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out`;

/** Compare-and-delete: the lease and its record go only if this node still holds the lease. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0`;

/**
 * The node's heartbeat in the live-node set, scored by its expiry on Redis's own clock (so nodes' clocks need
 * not agree); a draining node leaves the set. Entries long expired are swept on the way.
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1`;

/** The live nodes: those whose heartbeat has not expired by Redis's clock. */
export const PEERS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')`;

/** The Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.href;
  } catch {
    return "(unparsable URL)";
  }
}

/** What the cluster needs of Redis: one command at a time, each failing fast. A fake implements it in tests. */
export interface Store {
  send(command: string, args: string[]): Promise<unknown>;
  /** Runs a Lua script with `keys` and `args`. */
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
  close(): void;
}

/** Opens the directory at `url`; rejects, with the URL named and its password hidden, when it cannot. */
export async function connectStore(url: string, timeoutMs: number): Promise<Store> {
  const client = new Bun.RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    connectionTimeout: timeoutMs,
  });
  try {
    await deadline(client.connect(), timeoutMs);
    await deadline(client.send("PING", []), timeoutMs);
  } catch (err) {
    client.close();
    // Bun says only "Connection closed" for a refused connection and a wrong password alike.
    throw new Error(`cannot reach the cluster directory at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  return new RedisStore(client, timeoutMs);
}

class RedisStore implements Store {
  private reconnecting: Promise<void> | null = null;

  constructor(
    private readonly client: Bun.RedisClient,
    private readonly timeoutMs: number,
  ) {}

  async send(command: string, args: string[]): Promise<unknown> {
    // Bun's own reconnection gives up after its retries and waits between them; a command that finds the
    // connection down asks for one at once (one at a time), so service resumes with the first use after Redis
    // is back. A Redis that refuses costs nothing here; one that does not answer, at most the deadline.
    if (!this.client.connected) {
      this.reconnecting ??= deadline(this.client.connect(), this.timeoutMs)
        .catch(() => {})
        .finally(() => {
          this.reconnecting = null;
        });
      await this.reconnecting;
    }
    return deadline(this.client.send(command, args), this.timeoutMs);
  }

  eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    return this.send("EVAL", [script, String(keys.length), ...keys, ...args]);
  }

  close(): void {
    this.client.close();
  }
}

/** `promise`, or a rejection after `ms`: a Redis that accepts the connection and never answers must not hold us. */
function deadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
