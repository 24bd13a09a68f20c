# Shopfloor app image: Node 24 runs the TypeScript sources directly.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
EXPOSE 5678
CMD ["node", "src/cli.ts", "start"]
