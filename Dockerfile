# Shopfloor app image: Node 24 runs the TypeScript sources directly.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
# Run as the image's unprivileged `node` user; only its data folder is writable.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 5678
CMD ["node", "src/cli.ts", "start"]
