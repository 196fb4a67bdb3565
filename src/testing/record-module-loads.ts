import { register } from "node:module";

/** `node --import <this> program.js`: records the modules the program loads (see module-load-log.ts). */
register("./module-load-log.js", import.meta.url);
