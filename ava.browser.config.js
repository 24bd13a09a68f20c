// npm run test:browser: the console in a real Chromium (not part of npm test).
export default {
  files: ["test/browser/**/*.browser.ts"],
  extensions: ["ts"],
  timeout: "3m",
  workerThreads: false,
  concurrency: 1,
};
