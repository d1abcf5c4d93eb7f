import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { joinCorkedWrites, runBoundaries } from '../../src/transport/coalesce.js';

const bytes = (length: number, fill: number) => Buffer.alloc(length, fill);

describe('runBoundaries', () => {
  it('groups consecutive small pieces up to the limit and keeps their order', () => {
    expect(runBoundaries([3, 2, 5, 2], 10)).toEqual([
      { start: 0, end: 3, bytes: 10 },
      { start: 3, end: 4, bytes: 2 },
    ]);
  });

  it('leaves a piece bigger than the limit alone', () => {
    expect(runBoundaries([4, 20, 1], 10)).toEqual([
      { start: 0, end: 1, bytes: 4 },
      { start: 1, end: 2, bytes: 20 },
      { start: 2, end: 3, bytes: 1 },
    ]);
  });

  it('returns nothing for nothing', () => {
    expect(runBoundaries([], 10)).toEqual([]);
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

  it('joins many pieces across several runs intact, even when the channel reads a write only when it calls back', async () => {
    const received: Buffer[] = [];
    const channel = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        // Like an SSH channel out of window: the data is read later, then the callback comes.
        setImmediate(() => {
          received.push(Buffer.from(chunk));
          callback();
        });
      },
    });
    joinCorkedWrites(channel);
    const pieces = Array.from({ length: 50 }, (_, index) => bytes(3000 + index, index));
    channel.cork();
    for (const piece of pieces) channel.write(piece);
    process.nextTick(() => channel.uncork());
    await new Promise((resolve) => channel.end(resolve));
    expect(received.length).toBeGreaterThan(1);
    expect(Buffer.concat(received).equals(Buffer.concat(pieces))).toBe(true);
  });
});
