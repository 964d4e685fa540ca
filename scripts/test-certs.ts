import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCerts {
  /** The throw-away CA's certificate (trust it with NODE_EXTRA_CA_CERTS). */
  ca: string;
  cert: string;
  key: string;
}

/**
 * A throw-away CA and a server certificate for 127.0.0.1 signed by it, made
 * with openssl in `dir`: for Redis over TLS in tests and benchmarks.
 */
export async function makeTestCerts(dir: string): Promise<TestCerts> {
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pullq-test-ca'], { cwd: dir });
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1'], { cwd: dir });
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '2', '-extfile', 'ext.cnf'], { cwd: dir });
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'srv.crt'), key: path.join(dir, 'srv.key') };
}
