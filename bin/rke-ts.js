#!/usr/bin/env -S node --max-semi-space-size=1
// A 1 MiB young generation: the data paths allocate many short-lived buffers, and the
// default (up to 16 MiB per semi-space) costs ~20 MiB of resident memory for no measurable speed.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv);
