import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatTextLine } from '../../src/log/logger.js';

function capture(): { stream: Writable; text: () => string } {
  let data = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      data += chunk.toString();
      callback();
    },
  });
  return { stream, text: () => data };
}

describe('logger', () => {
  it('prints RKE-style lines with elapsed seconds', () => {
    expect(formatTextLine(JSON.stringify({ level: 30, time: 5_500, msg: '[etcd] Saving snapshot [x] on host [y]' }), 1_000, false)).toBe(
      'INFO[0004] [etcd] Saving snapshot [x] on host [y]\n',
    );
    expect(formatTextLine(JSON.stringify({ level: 40, time: 0, msg: 'careful' }), 0, false)).toBe('WARN[0000] careful\n');
  });

  it('writes JSON lines with --log-format json and redacts secrets', () => {
    const out = capture();
    const log = createLogger({ format: 'json', debug: false, quiet: false, stream: out.stream });
    log.info({ s3: { secretKey: 'TOPSECRET', accessKey: 'AKIA' }, password: 'hunter2' }, 'configured');
    const record = JSON.parse(out.text()) as Record<string, unknown>;
    expect(record.msg).toBe('configured');
    expect(out.text()).not.toContain('TOPSECRET');
    expect(out.text()).not.toContain('hunter2');
    expect(out.text()).toContain('AKIA');
  });

  it('prints only errors with --quiet', () => {
    const out = capture();
    const log = createLogger({ format: 'text', debug: false, quiet: true, stream: out.stream });
    log.info('hidden');
    log.warn('hidden too');
    log.error('shown');
    expect(out.text()).toMatch(/^ERRO\[\d{4}\] shown\n$/);
  });

  it('shows context fields only with --debug', () => {
    const out = capture();
    const log = createLogger({ format: 'text', debug: true, quiet: false, stream: out.stream });
    log.debug({ node: '10.0.0.1', sshKey: 'PRIVATE' }, 'connecting');
    expect(out.text()).toContain('DEBU[');
    expect(out.text()).toContain('node=10.0.0.1');
    expect(out.text()).not.toContain('PRIVATE');
  });
});
