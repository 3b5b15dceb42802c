import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsFixture {
  certFile: string;
  keyFile: string;
  /** The certificate's PEM text, to pass as `ca` to a client that should verify it. */
  cert: Buffer;
  /** Deletes the temporary directory. */
  remove(): Promise<void>;
}

/**
 * A fresh self-signed certificate for `localhost` and 127.0.0.1, valid one day,
 * made by the `openssl` command in a temporary directory. Rejects with a message
 * saying how to get openssl when it is not installed: TLS tests must fail then,
 * never skip silently.
 */
export async function makeSelfSignedCert(): Promise<TlsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'strands-tls-'));
  const certFile = join(dir, 'c.pem');
  const keyFile = join(dir, 'k.pem');
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];
  try {
    await new Promise<void>((resolve, reject) => {
      execFile('openssl', args, { timeout: 30_000 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const code = (err as NodeJS.ErrnoException).code;
        reject(
          code === 'ENOENT'
            ? new Error('the TLS tests need the `openssl` command to generate a self-signed certificate, and it is not on PATH (Debian: apt-get install openssl)')
            : new Error(`openssl could not generate a self-signed certificate: ${String(stderr).trim() || err.message}`),
        );
      });
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { certFile, keyFile, cert: await readFile(certFile), remove: () => rm(dir, { recursive: true, force: true }) };
}
