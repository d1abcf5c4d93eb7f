#!/usr/bin/env -S node --max-semi-space-size=4 --single-threaded-gc
// A 4 MiB young generation (the default grows to 16): big enough that the SSH packets a restore
// queues for its slower targets die young, small enough not to cost resident memory. Uploads
// scavenge earlier (src/run/young-generation.ts).
// Garbage collection on the main thread only: the heap is small (~20 MiB), and helper threads
// cost a restore ~2 s more CPU than they save, CPU the SSH and S3 streams need.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv);
