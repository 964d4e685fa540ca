import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

// Each src/redis/lua/<name>-<numKeys>.lua becomes an ioredis command `<name>`.
// ioredis 5 sends a script's first call on each connection as EVAL (the whole
// body) and later ones as EVALSHA; a call resent after a reconnect is an EVAL
// again. Every state-changing script is idempotent under such a replay.

const LUA_DIR = new URL('./lua/', import.meta.url);

interface ScriptSource {
  name: string;
  numberOfKeys: number;
  lua: string;
}

let sources: ScriptSource[] | undefined;

function loadSources(): ScriptSource[] {
  sources ??= readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
      if (!m) throw new Error(`bad Lua script file name: ${file} (want <name>-<numKeys>.lua)`);
      return { name: m[1]!, numberOfKeys: Number(m[2]), lua: readFileSync(new URL(file, LUA_DIR), 'utf8') };
    });
  return sources;
}

type ScriptFn = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/** The atomic operations of src/redis/lua, callable by name on one connection. */
export type Scripts = Record<'openRun' | 'enqueueIds' | 'sealRun' | 'commitBatch' | 'takeCredential' | 'reportResponse' | 'confirmStart' | 'releaseStart' | 'extendLock' | 'releaseLock' | 'markFinalized', ScriptFn>;

/** Registers every Lua script on `redis` once and returns callers for them. */
export function scriptsFor(redis: Redis): Scripts {
  const r = redis as unknown as Record<string, ScriptFn>;
  for (const s of loadSources()) {
    if (typeof r[s.name] !== 'function') redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
  return new Proxy({} as Scripts, {
    get(_, name: string) {
      const fn = r[name];
      if (typeof fn !== 'function') throw new Error(`no Lua script named ${name}`);
      return fn.bind(redis);
    },
  });
}
