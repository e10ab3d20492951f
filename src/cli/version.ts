/** Hoist's version, in a module of its own so that printing it loads no command. */
export const VERSION = '0.1.0';
