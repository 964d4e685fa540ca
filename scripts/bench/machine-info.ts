import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  redis: string;
  packages: Record<string, string>;
  pullqCommit: string | null;
  /** Uncommitted changes under src/ when measured. */
  pullqDirty: boolean;
}

function version(root: string, pkg: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The machine and the software the figures were measured with. */
export function machineInfo(root: string, redisInfo: string): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // not Linux
  }
  let commit: string | null = null;
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
  } catch {
    commit = null;
  }
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpuModel,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(redisInfo)?.[1] ?? 'unknown',
    packages: Object.fromEntries(['bullmq', 'ioredis', 'got', 'p-limit', 'bottleneck', 'pino', 'zod'].map((p) => [p, version(root, p)])),
    pullqCommit: commit,
    pullqDirty: dirty,
  };
}
