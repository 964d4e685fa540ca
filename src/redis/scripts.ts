import { readdirSync, readFileSync } from 'node:fs';
import type { RedisClient } from './connect-redis.js';

// Each src/redis/lua/<name>-<numKeys>.lua becomes an ioredis command `<name>`
// (`-n`: as many keys as the caller passes, the count first).
// ioredis 5 sends a script's first call on each connection as EVAL (the whole
// body) and later ones as EVALSHA; a call resent after a reconnect is an EVAL
// again. Every state-changing script is idempotent under such a replay.

const LUA_DIR = new URL('./lua/', import.meta.url);

interface ScriptSource {
  name: string;
  /** undefined: variable, passed as the first argument. */
  numberOfKeys: number | undefined;
  lua: string;
}

let sources: ScriptSource[] | undefined;

/**
 * A script's text with its includes expanded: a line `--@include <name>` is
 * replaced by lua/include/<name>.lua (shared snippets, e.g. Redis's clock in ms).
 */
export function luaSource(file: string): string {
  return readFileSync(new URL(file, LUA_DIR), 'utf8').replace(/^--@include ([\w-]+)$/gm, (_, name: string) => readFileSync(new URL(`include/${name}.lua`, LUA_DIR), 'utf8').trimEnd());
}

function loadSources(): ScriptSource[] {
  sources ??= readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([A-Za-z]+)-(\d+|n)\.lua$/.exec(file);
      if (!m) throw new Error(`bad Lua script file name: ${file} (want <name>-<numKeys>.lua or <name>-n.lua)`);
      return { name: m[1]!, numberOfKeys: m[2] === 'n' ? undefined : Number(m[2]), lua: luaSource(file) };
    });
  return sources;
}

type ScriptFn = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/** The atomic operations of src/redis/lua, callable by name on one connection. */
export type Scripts = Record<'openRun' | 'enqueueIds' | 'sealRun' | 'commitBatch' | 'takeCredential' | 'reportResponse' | 'confirmStart' | 'releaseStart' | 'refundStart' | 'extendLock' | 'releaseLock' | 'setWhileLocked' | 'markFinalized' | 'findStrandedBatches' | 'beginRefresh' | 'commitRefresh' | 'endRefresh', ScriptFn>;

/** Registers every Lua script on `redis` once and returns callers for them. */
export function scriptsFor(redis: RedisClient): Scripts {
  const r = redis as unknown as Record<string, ScriptFn>;
  for (const s of loadSources()) {
    if (typeof r[s.name] !== 'function') redis.defineCommand(s.name, s.numberOfKeys === undefined ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
  return new Proxy({} as Scripts, {
    get(_, name: string) {
      const fn = r[name];
      if (typeof fn !== 'function') throw new Error(`no Lua script named ${name}`);
      return fn.bind(redis);
    },
  });
}
