# risk-agent: a static binary on distroless, as a non-root user.
# Build from the repository root: docker build -f deploy/docker/risk-agent.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/risk-agent ./services/risk-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/risk-agent /risk-agent
USER 65532:65532
ENTRYPOINT ["/risk-agent"]
