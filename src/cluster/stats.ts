import type { Family } from "../metrics.ts";

/** What failed to reach the directory: the `op` label of `scalesocket_cluster_directory_errors`. */
export const DIRECTORY_OPS = ["acquire", "renew", "release", "lobby", "peers"] as const;
export type DirectoryOp = (typeof DIRECTORY_OPS)[number];

/** A cluster node's own counts: its leases, the clients it forwards and is forwarded, the directory's errors. */
export interface ClusterCounters {
  leasesAcquired: number;
  renewals: number;
  /** Leases given up because they could not be renewed in time, or were found held by another node. */
  leasesFenced: number;
  leasesReleased: number;
  directoryErrors: Record<DirectoryOp, number>;
  /** Clients this node proxied to a room's owner, and clients other nodes proxied here. */
  forwardedOut: number;
  forwardedIn: number;
  forwardedOutOpen: number;
  forwardedInOpen: number;
  /** Forwarded clients whose owner could not be reached, and forwarding headers refused (forged or expired). */
  forwardUnreachable: number;
  forwardForged: number;
}

export function createClusterCounters(): ClusterCounters {
  return {
    leasesAcquired: 0,
    renewals: 0,
    leasesFenced: 0,
    leasesReleased: 0,
    directoryErrors: Object.fromEntries(DIRECTORY_OPS.map((op) => [op, 0])) as Record<DirectoryOp, number>,
    forwardedOut: 0,
    forwardedIn: 0,
    forwardedOutOpen: 0,
    forwardedInOpen: 0,
    forwardUnreachable: 0,
    forwardForged: 0,
  };
}

/** The cluster's metric families, appended to `/metrics` on a cluster node only. */
export function clusterFamilies(c: ClusterCounters, leasesHeld: number): Family[] {
  return [
    ["scalesocket_cluster_leases_held", "gauge", "Room leases this node holds now.", [["", leasesHeld]]],
    [
      "scalesocket_cluster_lease_events",
      "counter",
      "Room leases taken, renewal rounds that succeeded, leases fenced (not renewed in time) and released.",
      [
        ['{event="acquired"}', c.leasesAcquired],
        ['{event="renewed"}', c.renewals],
        ['{event="fenced"}', c.leasesFenced],
        ['{event="released"}', c.leasesReleased],
      ],
    ],
    [
      "scalesocket_cluster_directory_errors",
      "counter",
      "Directory (Redis) commands that failed or timed out, by operation.",
      DIRECTORY_OPS.map((op) => [`{op="${op}"}`, c.directoryErrors[op]]),
    ],
    [
      "scalesocket_cluster_forwarded",
      "counter",
      "Clients proxied to their room's owner (out) and proxied here by another node (in).",
      [
        ['{direction="out"}', c.forwardedOut],
        ['{direction="in"}', c.forwardedIn],
      ],
    ],
    [
      "scalesocket_cluster_forwarded_open",
      "gauge",
      "Proxied clients open now, by direction.",
      [
        ['{direction="out"}', c.forwardedOutOpen],
        ['{direction="in"}', c.forwardedInOpen],
      ],
    ],
    [
      "scalesocket_cluster_forward_failures",
      "counter",
      "Forwards that failed: owner unreachable, or a forwarding header refused (forged or expired).",
      [
        ['{reason="owner_unreachable"}', c.forwardUnreachable],
        ['{reason="bad_signature"}', c.forwardForged],
      ],
    ],
  ];
}
