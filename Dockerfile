# syntax=docker/dockerfile:1.7
# One image for the engine and the backend (the command picks which), in a CPU and a GPU flavour:
#   docker build --target cpu -t anomaly-stream:cpu .
#   docker build --target gpu -t anomaly-stream:gpu .   (CUDA 12 execution provider for onnxruntime)
# Without a command the CPU image runs `npm start`'s one-machine demo (start.ts), whose services
# listen on the container's loopback only, as they have no sign-in: reach it with
# `docker run --network host anomaly-stream:cpu` (Linux), or run each service with its command
# as compose.yaml does (`backend/main.ts`, `engine/main.ts`, with tokens set).
# The services run TypeScript through run_ts.mjs (esbuild, at start), so there is no compile
# stage: the dependency stages install production packages only, and the runtime stages copy them
# beside the sources.

ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- production dependencies, CPU: onnxruntime-node ships its CPU library in the package ----
# (package.json's allowScripts denies onnxruntime-node's install script, but the npm 10 that comes
# with Node 20 ignores allowScripts: "skip" tells that script itself not to download CUDA.)
FROM ${NODE_IMAGE} AS deps-cpu
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# ---- production dependencies, GPU: the only place the CUDA provider libraries are downloaded ----
# (with ONNXRUNTIME_NODE_INSTALL set, package.json's postinstall runs onnxruntime-node's installer.)
FROM ${NODE_IMAGE} AS deps-gpu
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# ---- sources shared by both runtimes ----
FROM ${NODE_IMAGE} AS source
WORKDIR /app
# *.ts: the root entry points (start.ts, launch.ts); run_ts.mjs starts every service.
COPY package.json tsconfig.json deno.json *.ts run_ts.mjs ./
COPY contracts ./contracts
COPY telemetry ./telemetry
COPY models ./models
COPY scoring ./scoring
COPY engine ./engine
COPY backend ./backend

# ---- CPU runtime (default target) ----
FROM ${NODE_IMAGE} AS cpu
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps-cpu --chown=root:root /app/node_modules ./node_modules
COPY --from=source --chown=root:root /app ./
# The code is root-owned and read-only to the service; only its data folder is writable.
# run_ts.mjs writes the compiled service there once; everything else stays read-only.
RUN mkdir -p /app/.data/secrets /app/node_modules/.cache/run_ts && chown node:node /app/.data /app/.data/secrets /app/node_modules/.cache/run_ts
USER node
EXPOSE 9000 3000
ENTRYPOINT ["node", "--max-semi-space-size=4", "run_ts.mjs"]
CMD ["start.ts"]

# ---- GPU runtime: CUDA 12 + cuDNN 9 user-space libraries, Node copied from the official image ----
FROM ${CUDA_IMAGE} AS gpu
COPY --from=deps-gpu /usr/local/bin/node /usr/local/bin/node
# uid and gid 1000, as the CPU image's `node` user that writes the token files (mode 0600) this
# engine reads; Ubuntu 24.04 images already have that user (ubuntu), older ones get one.
RUN id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --user-group --no-create-home app
ENV NODE_ENV=production MALLOC_ARENA_MAX=2 DEFAULT_DEVICE=cuda
WORKDIR /app
COPY --from=deps-gpu --chown=root:root /app/node_modules ./node_modules
COPY --from=source --chown=root:root /app ./
RUN mkdir -p /app/.data/secrets /app/node_modules/.cache/run_ts && chown 1000:1000 /app/.data /app/.data/secrets /app/node_modules/.cache/run_ts
USER 1000:1000
EXPOSE 9000
ENTRYPOINT ["node", "--max-semi-space-size=4", "run_ts.mjs"]
CMD ["engine/main.ts"]
