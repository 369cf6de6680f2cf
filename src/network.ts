/**
 * @module network
 * Which addresses the server's own outgoing requests (an agent's http MCP servers, webhooks) may
 * never reach, and what a host name resolves to now.
 */
import net from 'node:net';
import dns from 'node:dns';

/** Loopback, private, link-local, shared (CGNAT), unspecified, multicast and reserved ranges. */
const closed = new net.BlockList();
for (const [a, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments (some clouds' metadata, e.g. 192.0.0.192)
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  closed.addSubnet(a, bits, 'ipv4');
for (const [a, bits] of [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible form
  ['64:ff9b::', 96], // NAT64: the IPv4 address behind it may be private
  ['64:ff9b:1::', 48], // local NAT64
  ['2002::', 16], // 6to4: an IPv4 address inside
  ['fc00::', 7],
  ['fec0::', 10], // site-local (deprecated)
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  closed.addSubnet(a, bits, 'ipv6');
/** Whether an address is one no agent or webhook may reach (IPv4-mapped IPv6 as its IPv4). */
export function isClosedAddress(ip: string): boolean {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  if (v4mapped) return closed.check(v4mapped, 'ipv4');
  return closed.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** The addresses a host name has now (none when it cannot be resolved within 2 s). */
export async function addressesOf(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((r) => (timer = setTimeout(() => r([]), 2_000)));
  const found = dns.promises.lookup(host, { all: true }).then(
    (a) => a.map((x) => x.address),
    () => [],
  );
  return Promise.race([found, timeout]).finally(() => clearTimeout(timer));
}
