// npm run test:browser: the console in a real Chromium (not part of npm test).
// npm run console:screenshots sets CONSOLE_SCREENSHOTS and runs the screenshot script instead.
export default {
  files: process.env.CONSOLE_SCREENSHOTS ? ["test/browser/screenshots.shots.ts"] : ["test/browser/**/*.browser.ts"],
  extensions: ["ts"],
  timeout: "3m",
  workerThreads: false,
  concurrency: 1,
};
