import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { joinCorkedWrites, joinedRuns } from '../../src/transport/coalesce.js';

const bytes = (length: number, fill: number) => Buffer.alloc(length, fill);

describe('joinedRuns', () => {
  it('joins consecutive small buffers up to the limit and keeps their order', () => {
    const runs = joinedRuns([bytes(3, 1), bytes(2, 2), bytes(5, 3), bytes(2, 4)], 10);
    expect(runs.map((run) => run.length)).toEqual([10, 2]);
    expect(Buffer.concat(runs).equals(Buffer.concat([bytes(3, 1), bytes(2, 2), bytes(5, 3), bytes(2, 4)]))).toBe(true);
  });

  it('leaves a buffer bigger than the limit alone, without copying it', () => {
    const big = bytes(20, 9);
    const runs = joinedRuns([bytes(4, 1), big, bytes(1, 2)], 10);
    expect(runs.map((run) => run.length)).toEqual([4, 20, 1]);
    expect(runs[1]).toBe(big);
  });

  it('returns nothing for nothing', () => {
    expect(joinedRuns([], 10)).toEqual([]);
  });
});

describe('joinCorkedWrites', () => {
  it('hands corked writes (HTTP chunk framing) to a stream without _writev as one write, in order', async () => {
    const writes: Buffer[] = [];
    const channel = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        writes.push(chunk);
        // Like an SSH channel waiting for window: the callback comes later.
        setImmediate(callback);
      },
    });
    joinCorkedWrites(channel);
    channel.cork();
    for (const piece of ['8000', '\r\n', 'data', '\r\n']) channel.write(Buffer.from(piece));
    process.nextTick(() => channel.uncork());
    await new Promise((resolve) => channel.end(resolve));
    expect(writes.map((chunk) => chunk.toString())).toEqual(['8000\r\ndata\r\n']);
  });

  it('writes runs one after the other, each after the previous one was taken', async () => {
    const writes: number[] = [];
    let inProgress = false;
    const channel = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        expect(inProgress).toBe(false);
        inProgress = true;
        writes.push(chunk[0]!);
        setImmediate(() => {
          inProgress = false;
          callback();
        });
      },
    });
    joinCorkedWrites(channel);
    channel.cork();
    for (const fill of [1, 2, 3]) channel.write(bytes(40 * 1024, fill));
    process.nextTick(() => channel.uncork());
    await new Promise((resolve) => channel.end(resolve));
    expect(writes).toEqual([1, 2, 3]);
  });
});
