// Logging: pino JSON lines, pretty-printed when the output is a terminal.
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export function createLogger(opts: { level: string; pretty: boolean; fd?: 1 | 2 }): Logger {
  const fd = opts.fd ?? 1;
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    // Never let a secret reach a log line, whatever object is logged.
    redact: { paths: ["*.password", "*.jwtSecret", "*.token", "password", "jwtSecret", "token"], remove: true },
  };
  if (opts.pretty) {
    return pino(
      base,
      pretty({ sync: true, destination: fd, colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }),
    );
  }
  return pino(base, pino.destination({ dest: fd, sync: true }));
}
