# syntax=docker/dockerfile:1
#
# natgw container image: a build stage that compiles natgw with its DPDK
# driver against Debian 12's DPDK 22.11, and a runtime stage with DPDK's
# runtime libraries and natgw only.
#
#   docker build -t natgw:dev --build-arg VERSION=$(git describe --always --dirty) .
#
# deploy/dockerfile_test.go checks that the runtime stage installs the
# package of every shared library natgw links against, and builds the image
# where Docker runs.
#
# Running it. natgw needs the host's NICs, hugepages and memory locking, so
# the container is privileged in specific ways and runs as root (DPDK opens
# /dev/vfio and maps hugepages; a non-root user would need those devices
# and hugetlbfs chowned to it on the host):
#
#   docker run -d --name natgw --restart on-failure \
#     --network host \
#     --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW --cap-add IPC_LOCK \
#     --cap-add SYS_ADMIN --cap-add SYS_RAWIO --cap-add SYS_NICE \
#     --ulimit memlock=-1 \
#     --device /dev/vfio/vfio --device /dev/vfio/<group of each NIC> \
#     -v /dev/hugepages:/dev/hugepages \
#     -v /etc/natgw:/etc/natgw:ro \
#     -e NATGW_MGMT=http://172.16.0.10:9650 \
#     natgw:dev
#
#   --network host     the management API listens on the host's address, and
#                      the afpacket driver / net_af_packet need the host's
#                      interfaces
#   NET_ADMIN, NET_RAW AF_PACKET sockets, promiscuous mode, mlx5 setup
#   IPC_LOCK           lock hugepage memory; with --ulimit memlock=-1
#   SYS_ADMIN          EAL reads physical addresses (/proc/self/pagemap)
#                      when IOVA is PA (no IOMMU, some PMDs)
#   SYS_RAWIO          port I/O of legacy virtio devices; drop it otherwise
#   SYS_NICE           Docker's seccomp profile allows mbind/set_mempolicy
#                      (DPDK's NUMA-aware allocation) only with it
#   --device /dev/vfio NICs bound to vfio-pci on the host
#                      (deploy/setup-host.sh); ls /dev/vfio lists the groups
#   /dev/hugepages     hugepages reserved on the host (setup-host.sh)
#   NATGW_MGMT         where the health check finds the management API
#                      (mgmt.listen of the configuration)
# docs/OPERATIONS.md ("Containers") has the same list with the reasons.

ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

# ---- build: natgw with the DPDK driver (cgo, pkg-config libdpdk) ----
FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libdpdk-dev pkg-config make
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# BUILD_TAGS=dpdk: fail here, not at run time, when DPDK is missing.
RUN make build BUILD_TAGS=dpdk VERSION=${VERSION} && bin/natgw version

# ---- runtime: DPDK's runtime libraries and natgw ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The librte-* libraries natgw links against (ldd bin/natgw), EAL's plugins
# that natgw needs at run time (the ring mempool, the PCI and virtual
# device buses) and the poll-mode drivers of the NICs natgw is deployed on
# (add yours: apt-cache search librte-net). Debian's EAL loads every driver
# installed in /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0, so only installed
# drivers are probed. curl is for the health check.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends \
		librte-eal23 librte-ethdev23 librte-mbuf23 librte-mempool23 \
		librte-ring23 librte-net23 librte-kvargs23 librte-telemetry23 \
		librte-meter23 libnuma1 libfdt1 libbsd0 libmd0 \
		librte-mempool-ring23 librte-bus-pci23 librte-bus-vdev23 \
		librte-net-ixgbe23 librte-net-i40e23 librte-net-ice23 \
		librte-net-mlx5-23 librte-net-virtio23 librte-net-vmxnet3-23 \
		librte-net-af-packet23 \
		curl \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/natgw /usr/local/bin/natgw
COPY deploy/natgw.toml /etc/natgw/natgw.toml
ENV NATGW_MGMT=http://127.0.0.1:9650
EXPOSE 9650/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD curl -fsS "$NATGW_MGMT/healthz" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/natgw"]
CMD ["run", "--config", "/etc/natgw/natgw.toml"]
