#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded-gc
// A 1 MiB young generation: the data paths allocate many short-lived buffers, and the
// default (up to 16 MiB per semi-space) costs ~20 MiB of resident memory for no measurable speed.
// Garbage collection on the main thread only: the heap is small (~20 MiB), and helper threads
// cost a restore ~2 s more CPU than they save, CPU the SSH and S3 streams need.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv);
