/**
 * SSH user certificates against a real OpenSSH sshd: a throwaway sshd on 127.0.0.1 that trusts
 * only certificates signed by a CA made here (`AuthorizedKeysFile none`), so a plain key fails.
 * Needs root (sshd with privilege separation, useradd) and Debian's openssh-server.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthError, ConfigError } from '../../src/errors.js';
import { type SshEndpoint, SshConnection } from '../../src/transport/ssh.js';

const SSHD = '/usr/sbin/sshd';
const USER = 'rkets-cert';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('ssh user certificates (real sshd)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rkets-sshd-'));
  const file = (name: string) => path.join(dir, name);
  const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], { stdio: 'pipe' });
  /** New user key `name` (+ .pub); `sign` makes `<name>-cert.pub` with the given CA and validity. */
  const userKey = (name: string, type: string[], ca = 'ca', validity = '-5m:+1h') => {
    keygen('-t', ...type, '-N', '', '-C', name, '-f', file(name));
    keygen('-s', file(ca), '-I', `test-${name}`, '-n', USER, '-V', validity, file(`${name}.pub`));
  };
  let sshd: ChildProcess | undefined;
  let sshdLog = '';
  let port = 0;

  const endpoint = (key: string, cert: Partial<SshEndpoint> = { sshCertPath: file(`${key}-cert.pub`) }): SshEndpoint => ({
    address: '127.0.0.1',
    port,
    user: USER,
    sshKeyPath: file(key),
    sshAgentAuth: false,
    ...cert,
  });
  const run = async (target: SshEndpoint) => {
    const conn = await SshConnection.open(target, 'node 127.0.0.1', { env: {}, readyTimeoutMs: 10_000 });
    try {
      return await conn.exec('id -un');
    } finally {
      conn.close();
    }
  };

  beforeAll(async () => {
    try {
      execFileSync('id', ['-u', USER], { stdio: 'ignore' });
    } catch {
      // '*' rather than useradd's locked '!': with UsePAM no, sshd refuses locked accounts.
      execFileSync('useradd', ['-m', '-s', '/bin/sh', '-p', '*', USER]);
    }
    mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
    keygen('-t', 'ed25519', '-N', '', '-f', file('host'));
    keygen('-t', 'ed25519', '-N', '', '-f', file('ca'));
    keygen('-t', 'ed25519', '-N', '', '-f', file('other-ca'));
    userKey('ed25519', ['ed25519']);
    userKey('rsa', ['rsa', '-b', '2048']);
    userKey('ecdsa', ['ecdsa', '-b', '256']);
    userKey('wrong-ca', ['ed25519'], 'other-ca');
    userKey('expired', ['ed25519'], 'ca', '20200101:20200102');
    port = await freePort();
    writeFileSync(
      file('sshd_config'),
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${file('host')}`,
        `TrustedUserCAKeys ${file('ca.pub')}`,
        'AuthorizedKeysFile none',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        `PidFile ${file('sshd.pid')}`,
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    // -D: stay in the foreground (the child is sshd itself), -e: log to stderr.
    sshd = spawn(SSHD, ['-D', '-e', '-f', file('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (data: Buffer) => (sshdLog += data.toString()));
    for (let i = 0; !sshdLog.includes('Server listening'); i++) {
      if (sshd.exitCode !== null || i > 100) throw new Error(`sshd did not start:\n${sshdLog}`);
      await sleep(100);
    }
  });

  afterAll(() => {
    sshd?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['ed25519', 'rsa', 'ecdsa'])('logs in with an %s key and its certificate (ssh_cert_path)', async (key) => {
    const result = await run(endpoint(key));
    expect(result).toMatchObject({ code: 0, stdout: `${USER}\n` });
    expect(sshdLog).toMatch(new RegExp(`Accepted publickey for ${USER} .* ${key === 'rsa' ? 'RSA' : key.toUpperCase()}-CERT`));
  });

  it('logs in with inline ssh_cert and ssh_key', async () => {
    const result = await run(
      endpoint('ed25519', { sshKey: readFileSync(file('ed25519'), 'utf8'), sshCert: readFileSync(file('ed25519-cert.pub'), 'utf8') }),
    );
    expect(result.stdout).toBe(`${USER}\n`);
  });

  it('the plain key alone is refused (only certificates are trusted)', async () => {
    await expect(run(endpoint('ed25519', {}))).rejects.toThrow(AuthError);
  });

  it('a certificate from another CA is refused as an authentication failure', async () => {
    const attempt = run(endpoint('wrong-ca'));
    await expect(attempt).rejects.toThrow(AuthError);
    await expect(attempt).rejects.toThrow(`node 127.0.0.1: ssh: authentication failed (user ${USER}, key ${file('wrong-ca')})`);
    // The server did get the certificate and turned it down (unknown CA), not a bare key.
    expect(sshdLog).toMatch(new RegExp(`Failed publickey for ${USER} .*ED25519-CERT .*ID test-wrong-ca`));
  });

  it('an expired certificate is refused by the server', async () => {
    await expect(run(endpoint('expired'))).rejects.toThrow(
      `node 127.0.0.1: ssh: authentication failed (user ${USER}, key ${file('expired')})`,
    );
    expect(sshdLog).toMatch(/expired|Certificate invalid/i);
  });

  it('a certificate for another key is a config error before connecting', async () => {
    const attempt = run(endpoint('rsa', { sshCertPath: file('ed25519-cert.pub') }));
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(/certificate .*ed25519-cert\.pub \(ssh-ed25519\) was not issued for private key .*rsa$/);
  });
});
