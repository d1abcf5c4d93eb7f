#!/usr/bin/env -S node --max-semi-space-size=4 --single-threaded-gc
// A 4 MiB young generation: the data paths allocate a buffer per SSH packet and socket read.
// With 4 MiB they mostly die young and go at the next scavenge; with 1 MiB they were promoted
// and waited for a full collection (restore peak ~150 MiB instead of ~125); the default (up
// to 16 MiB per semi-space) costs more than it saves.
// Garbage collection on the main thread only: the heap is small (~15 MiB), and helper threads
// cost a restore ~2 s more CPU than they save, CPU the SSH and S3 streams need.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv);
