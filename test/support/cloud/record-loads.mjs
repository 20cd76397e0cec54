// `node --import tsx --import ./record-loads.mjs …` with IMC_LOAD_LOG=<file>: records resolved modules.
import { register } from 'node:module';

register('./load-hooks.mjs', import.meta.url, { data: { log: process.env.IMC_LOAD_LOG ?? '' } });
