import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';

// A RESP-aware TCP proxy between a Redis client and a real Redis, for fault
// injection in tests and the soak benchmark (there is no Toxiproxy here). It
// pairs every reply with its command (FIFO per connection) and can swallow the
// reply to a chosen command after Redis ran it, then cut the connection: what
// a load balancer's idle timeout, a failover or a flaky network does. ioredis
// then reconnects and, by default, sends the unanswered command again.
// After SUBSCRIBE or MONITOR replies no longer pair with commands: such a
// connection is relayed as raw bytes, without faults.
//
// It can also rewind: run a script, let its reply through, and put the keys the
// script declared back as they were before it ran. That is an acknowledged write
// that Redis then lost (a crash under `appendfsync everysec`, a failover to a
// replica that had not received it yet).

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
  /**
   * The next `times` (default 1) matching EVAL/EVALSHA calls run and are answered, then the keys they declared
   * (all, or those at the 0-based `keys` indexes) are restored as they were before the call: Redis lost the
   * acknowledged write. Every connection's later commands wait until the keys are back.
   */
  rewind(match: CommandMatch, opts?: { times?: number; keys?: number[] }): LossRule;
  /** Before the next `times` (default 1) matching commands are forwarded, runs `hook` (every connection waits for it). */
  before(match: CommandMatch, hook: () => Promise<void>, opts?: { times?: number }): LossRule;
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

  const rewinds: { match: CommandMatch; left: number; fired: number; keys?: number[] }[] = [];
  const hooks: { match: CommandMatch; left: number; fired: number; hook: () => Promise<void> }[] = [];
  /** Resolves when no rewind or hook is under way: every connection forwards its next command only then. */
  let barrier: Promise<void> = Promise.resolve();
  let side: Redis | undefined;
  const sideConnection = (): Redis => (side ??= new Redis({ host: target.host, port: target.port, maxRetriesPerRequest: null, lazyConnect: false }));
  const hold = (work: () => Promise<void>): Promise<void> => {
    const run = barrier.then(work);
    barrier = run.catch(() => undefined);
    return run;
  };
  const takeRule = <R extends { match: CommandMatch; left: number; fired: number }>(list: R[], cmd: ProxiedCommand): R | undefined => {
    const r = list.find((x) => x.left > 0 && x.match(cmd));
    if (r) {
      r.left--;
      r.fired++;
    }
    return r;
  };
  /** The keys an EVAL/EVALSHA declares: after the script and numkeys. */
  const declaredKeys = (cmd: ProxiedCommand, only?: number[]): string[] => {
    const n = Number(cmd.args[1]?.toString() ?? 0);
    const keys = cmd.args.slice(2, 2 + n).map((k) => k.toString());
    return only ? only.filter((i) => i < keys.length).map((i) => keys[i]!) : keys;
  };
  const snapshot = async (keys: string[]): Promise<{ key: string; dump: Buffer | null; pttl: number }[]> => {
    const m = sideConnection().multi();
    for (const k of keys) m.dumpBuffer(k).pttl(k);
    const res = (await m.exec())!;
    return keys.map((key, i) => ({ key, dump: res[2 * i]![1] as Buffer | null, pttl: res[2 * i + 1]![1] as number }));
  };
  const restore = async (snap: { key: string; dump: Buffer | null; pttl: number }[]): Promise<void> => {
    const m = sideConnection().multi();
    for (const s of snap) {
      if (s.dump === null) m.del(s.key);
      else m.restore(s.key, s.pttl > 0 ? s.pttl : 0, s.dump, 'REPLACE');
    }
    await m.exec();
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
    /** Per command sent upstream, in order: what to do with its reply. */
    const pending: ({ kind: 'pass' } | { kind: 'lose' } | { kind: 'take'; resolve: (reply: Buffer) => void })[] = [];
    const commands = new RespReader(true);
    const replies = new RespReader(false);
    let raw = false;
    let lost = false;
    /** Commands are forwarded in order, each once the barrier (a rewind or hook under way) lets it. */
    let chain: Promise<void> = Promise.resolve();
    let held = 0;
    const toClient = (data: Buffer) => {
      if (delayMs > 0) setTimeout(() => client.write(data), delayMs);
      else client.write(data);
    };
    // A reply's entry is pushed when its command is written upstream: replies come back in that order.
    const forward = (data: Buffer, entry?: (typeof pending)[number]) => {
      if (held === 0 && !rewinds.some((r) => r.left > 0) && !hooks.some((h) => h.left > 0)) {
        if (entry) pending.push(entry);
        upstream.write(data);
        return;
      }
      held++;
      chain = chain.then(() => barrier).then(() => {
        if (entry) pending.push(entry);
        upstream.write(data);
      }).finally(() => held--);
    };
    client.on('data', (chunk: Buffer) => {
      if (raw) {
        forward(chunk);
        return;
      }
      for (const c of commands.push(chunk)) {
        const args = c.args ?? [];
        const name = (args[0]?.toString('latin1') ?? '').toLowerCase();
        const rest = args.slice(1);
        const script = name === 'evalsha' ? rest[0]?.toString('latin1').toLowerCase() : name === 'eval' && rest[0] ? createHash('sha1').update(rest[0]).digest('hex') : undefined;
        const cmd: ProxiedCommand = { name, args: rest, script };
        stats.commands++;
        if (RAW_AFTER.has(name)) raw = true;
        const hook = takeRule(hooks, cmd);
        const rw = script !== undefined ? takeRule(rewinds, cmd) : undefined;
        if (hook || rw) {
          const data = Buffer.from(c.raw);
          held++;
          chain = chain.then(() => hold(async () => {
            if (hook) await hook.hook();
            if (!rw) {
              pending.push({ kind: 'pass' });
              upstream.write(data);
              return;
            }
            const snap = await snapshot(declaredKeys(cmd, rw.keys));
            const reply = await new Promise<Buffer>((resolve) => {
              pending.push({ kind: 'take', resolve });
              upstream.write(data);
            });
            // An error reply (NOSCRIPT: ioredis sends EVAL next) changed nothing: the rule waits for the next call.
            if (reply[0] === 0x2d) {
              rw.left++;
              rw.fired--;
            } else {
              await restore(snap);
            }
            toClient(reply);
          })).finally(() => held--);
          continue;
        }
        forward(Buffer.from(c.raw), decide(cmd) ? { kind: 'lose' } : { kind: 'pass' });
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (lost) return;
      if (raw && pending.length === 0) {
        toClient(chunk);
        return;
      }
      for (const r of replies.push(chunk)) {
        const what = pending.shift();
        if (what?.kind === 'lose') {
          // Redis ran it; the client never hears back.
          lost = true;
          stats.lostReplies++;
          if (delayMs > 0) setTimeout(cut, delayMs);
          else cut();
          return;
        }
        if (what?.kind === 'take') {
          what.resolve(Buffer.from(r.raw));
          continue;
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
    rewind(match, opts = {}) {
      const rule = { match, left: opts.times ?? 1, fired: 0, keys: opts.keys };
      rewinds.push(rule);
      return { fired: () => rule.fired };
    },
    before(match, hook, opts = {}) {
      const rule = { match, left: opts.times ?? 1, fired: 0, hook };
      hooks.push(rule);
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
      side?.disconnect();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
