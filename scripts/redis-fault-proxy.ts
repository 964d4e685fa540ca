import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

// A RESP-aware TCP proxy between a Redis client and a real Redis, for fault
// injection in tests and the soak benchmark (there is no Toxiproxy here). It
// pairs every reply with its command (FIFO per connection) and can swallow the
// reply to a chosen command after Redis ran it, then cut the connection: what
// a load balancer's idle timeout, a failover or a flaky network does. ioredis
// then reconnects and, by default, sends the unanswered command again.
// After SUBSCRIBE or MONITOR replies no longer pair with commands: such a
// connection is relayed as raw bytes, without faults.

/** A command as the client sent it: lower-case name, the rest as bytes; `script` is the SHA-1 of an EVAL(SHA)'s script. */
export interface ProxiedCommand {
  name: string;
  args: Buffer[];
  script?: string;
}

export type CommandMatch = (cmd: ProxiedCommand) => boolean;

/** A rule that loses replies: how many it has lost so far. */
export interface LossRule {
  fired(): number;
}

export interface RedisProxy {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The next `times` (default 1) commands matching run on Redis, but their reply is lost and the connection cut. */
  loseReply(match: CommandMatch, opts?: { times?: number }): LossRule;
  /** Loses the reply to each matching command (default: every command) with this probability. */
  randomLoss(opts: { probability: number; match?: CommandMatch }): void;
  stopRandomLoss(): void;
  /** Delays every reply by `ms` (0: no delay). */
  delay(ms: number): void;
  /** Cuts every connection now. */
  cutAll(): void;
  /** Redis unreachable: cuts every connection and refuses new ones until resume(). */
  pause(): void;
  resume(): void;
  stats: { connections: number; commands: number; lostReplies: number };
  close(): Promise<void>;
}

/** SHA-1 hex of a Lua script: what ioredis sends with EVALSHA. */
export function scriptSha(lua: string): string {
  return createHash('sha1').update(lua).digest('hex');
}

type Parsed = { end: number; args?: Buffer[] } | { need: number };

/** Parses one RESP value at `pos`: its end, and for an array of bulk strings its items; or how many bytes are needed. */
function parseValue(buf: Buffer, pos: number, wantArgs: boolean): Parsed {
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return { need: buf.length + 1 };
  const type = String.fromCharCode(buf[pos]!);
  const head = buf.toString('latin1', pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '$':
    case '=':
    case '!': {
      const len = Number(head);
      if (len < 0) return { end: next };
      const end = next + len + 2;
      return end > buf.length ? { need: end } : { end };
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      const n = Number(head) * (type === '%' || type === '|' ? 2 : 1);
      if (n < 0) return { end: next };
      const args: Buffer[] = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const item = parseValue(buf, at, false);
        if ('need' in item) return item;
        if (wantArgs) {
          const nl = buf.indexOf('\r\n', at);
          args.push(buf.subarray(nl + 2, item.end - 2));
        }
        at = item.end;
      }
      return { end: at, args: wantArgs ? args : undefined };
    }
    default:
      if (wantArgs && !'+-:_,#('.includes(type)) {
        // An inline command ("PING\r\n").
        return { end: next, args: buf.toString('latin1', pos, lineEnd).trim().split(/\s+/).map((s) => Buffer.from(s)) };
      }
      return { end: next };
  }
}

/** Collects TCP chunks and yields complete RESP values; concatenates only once enough bytes arrived. */
class RespReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private need = 1;

  constructor(private readonly wantArgs: boolean) {}

  push(chunk: Buffer): { raw: Buffer; args?: Buffer[] }[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length < this.need) return [];
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    const out: { raw: Buffer; args?: Buffer[] }[] = [];
    let pos = 0;
    for (;;) {
      if (pos >= buf.length) {
        this.need = 1;
        break;
      }
      const p = parseValue(buf, pos, this.wantArgs);
      if ('need' in p) {
        this.need = p.need - pos;
        break;
      }
      out.push({ raw: buf.subarray(pos, p.end), args: p.args });
      pos = p.end;
    }
    buf = buf.subarray(pos);
    this.chunks = buf.length ? [buf] : [];
    this.length = buf.length;
    return out;
  }
}

const RAW_AFTER = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'monitor']);

/** Starts the proxy on 127.0.0.1 (a free port), in front of `target`. */
export async function startRedisProxy(target: { host: string; port: number }): Promise<RedisProxy> {
  const rules: { match: CommandMatch; left: number; fired: number }[] = [];
  let random: { probability: number; match?: CommandMatch } | undefined;
  let delayMs = 0;
  let paused = false;
  const sockets = new Set<Socket>();
  const stats = { connections: 0, commands: 0, lostReplies: 0 };

  const decide = (cmd: ProxiedCommand): boolean => {
    for (const r of rules) {
      if (r.left > 0 && r.match(cmd)) {
        r.left--;
        r.fired++;
        return true;
      }
    }
    return random !== undefined && (random.match?.(cmd) ?? true) && Math.random() < random.probability;
  };

  const server: Server = createServer((client) => {
    if (paused) {
      client.destroy();
      return;
    }
    stats.connections++;
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', cut);
      s.on('close', () => {
        sockets.delete(s);
        cut();
      });
    }
    const pending: boolean[] = [];
    const commands = new RespReader(true);
    const replies = new RespReader(false);
    let raw = false;
    let lost = false;
    const toClient = (data: Buffer) => {
      if (delayMs > 0) setTimeout(() => client.write(data), delayMs);
      else client.write(data);
    };
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (raw) return;
      for (const c of commands.push(chunk)) {
        const args = c.args ?? [];
        const name = (args[0]?.toString('latin1') ?? '').toLowerCase();
        const rest = args.slice(1);
        const script = name === 'evalsha' ? rest[0]?.toString('latin1').toLowerCase() : name === 'eval' && rest[0] ? createHash('sha1').update(rest[0]).digest('hex') : undefined;
        stats.commands++;
        pending.push(decide({ name, args: rest, script }));
        if (RAW_AFTER.has(name)) raw = true;
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (lost) return;
      if (raw && pending.length === 0) {
        toClient(chunk);
        return;
      }
      for (const r of replies.push(chunk)) {
        if (pending.shift()) {
          // Redis ran it; the client never hears back.
          lost = true;
          stats.lostReplies++;
          if (delayMs > 0) setTimeout(cut, delayMs);
          else cut();
          return;
        }
        toClient(r.raw);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const cutAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stats,
    loseReply(match, opts = {}) {
      const rule = { match, left: opts.times ?? 1, fired: 0 };
      rules.push(rule);
      return { fired: () => rule.fired };
    },
    randomLoss(opts) {
      random = opts;
    },
    stopRandomLoss() {
      random = undefined;
    },
    delay(ms) {
      delayMs = ms;
    },
    cutAll,
    pause() {
      paused = true;
      cutAll();
    },
    resume() {
      paused = false;
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
