/**
 * The `skip` option of an end-to-end suite: false as root, otherwise the reason, which the
 * test runner prints beside each skipped test. Real clusters need root: network namespaces,
 * veths and iptables rules (CAP_NET_ADMIN), cgroups, mounts, and containerd's socket.
 */
export function unlessRoot(what: string): string | false {
  return process.getuid?.() === 0
    ? false
    : `needs root: ${what} (network namespaces, iptables, cgroups, mounts); run as root, e.g. sudo ./scripts/test`;
}
