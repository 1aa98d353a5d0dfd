# orchestrator: a static binary on distroless, as a non-root user.
# Build from the repository root: docker build -f deploy/docker/orchestrator.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/orchestrator ./services/orchestrator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orchestrator /orchestrator
USER 65532:65532
ENTRYPOINT ["/orchestrator"]
