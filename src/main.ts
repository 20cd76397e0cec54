#!/usr/bin/env node
/** Entry point: run the CLI and exit with its code (0 ok, 1 a mirror failed, 2 bad usage). */
import { main } from './cli.js';

const code = await main(process.argv.slice(2));
process.exit(code);
