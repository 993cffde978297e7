# A scratch image holding the worker and a plain NATS server, both static Go
# binaries built on the host (no base image to pull; this works without a
# container registry):
#
#   make image        # = CGO_ENABLED=0 go build -o bin/ ./cmd/... && docker build -t invoke-worker:dev .
#
# The worker's entrypoint is /worker; docker-compose.yml and
# docker-compose.cluster.yml also run /natsd.
FROM scratch
COPY bin/worker /worker
COPY bin/natsd /natsd
COPY configs/nats.conf /etc/nats.conf
COPY configs/nats-cluster.conf /etc/nats-cluster.conf
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/worker"]
CMD ["run"]
