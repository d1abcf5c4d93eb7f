import { describe, expect, it } from 'vitest';
import { demuxDockerStream } from '../../src/node/containers.js';

function frame(type: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('demuxDockerStream', () => {
  it('separates stdout and stderr frames', () => {
    const buffer = Buffer.concat([frame(1, 'out1\n'), frame(2, 'err1\n'), frame(1, 'out2\n')]);
    expect(demuxDockerStream(buffer)).toEqual({ stdout: 'out1\nout2\n', stderr: 'err1\n' });
  });

  it('ignores a truncated trailing frame header', () => {
    expect(demuxDockerStream(Buffer.concat([frame(1, 'ok'), Buffer.from([1, 0, 0])]))).toEqual({ stdout: 'ok', stderr: '' });
  });
});
