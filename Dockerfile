# syntax=docker/dockerfile:1
# image-mirror-controller: `docker build -t image-mirror-controller .`
# Multi-arch: .github/workflows/release.yml builds linux/amd64 and linux/arm64 with buildx.
#
# Base: Node 24, a maintained LTS line (security fixes until April 2028; Node 20 reached end of life
# on 2026-04-30), on Debian 13 "trixie" slim, named explicitly so the Debian release never changes
# under the tag. The tag follows Node 24's patch releases; pin it by digest too for reproducible
# builds. Resolve the digest with
#   docker buildx imagetools inspect node:24-trixie-slim --format '{{json .Manifest.Digest}}'
# and build with --build-arg NODE_IMAGE=node:24-trixie-slim@sha256:<digest> (the release workflow does).
# The CLI itself still runs on Node 20.19+ (package.json engines; the bundle targets node20).
ARG NODE_IMAGE=node:24-trixie-slim

# Build on the builder's own platform: the output (JavaScript) is the same for every target.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build.mjs ./scripts/build.mjs
# The commit `image-mirror --version` prints (no .git in the build context).
ARG IMAGE_MIRROR_COMMIT=unknown
ENV IMAGE_MIRROR_COMMIT=${IMAGE_MIRROR_COMMIT}
RUN npm run build

# Production dependencies only. All of them are pure JavaScript (no native addons), so they too
# can be installed once on the build platform.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="image-mirror-controller" \
      org.opencontainers.image.description="Keeps container images mirrored between OCI registries" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/image-mirror-controller/image-mirror-controller"
# HOME=/tmp: the only writable place when the root filesystem is read-only (the chart mounts an
# emptyDir there); the docker config lookup (~/.docker) and Node's own temp files land there too.
ENV NODE_ENV=production \
    HOME=/tmp \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
# 65532: the conventional "nonroot" uid/gid (distroless), matching the chart's runAsUser.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/image-mirror.js"]
CMD ["controller"]
