/** What one run measures: the full plan (`npm run bench`, under 15 minutes) or `--quick` (under 3). */

export interface EchoCase {
  conns: number;
  window: number;
}

export interface Plan {
  quick: boolean;
  /** Repetitions of every measurement (start-up: `startupReps`); the tables show median and min–max. */
  reps: number;
  echo: EchoCase[];
  echoPinned: EchoCase[];
  echoWarmupMs: number;
  echoDurationMs: number;
  fanoutClients: number[];
  /** Lines per fan-out run times clients: each run delivers about this many messages. */
  fanoutDeliveries: number;
  /** Lines per client are capped so a client's backlog stays well under scalesocket's 4 MiB slow-client cap. */
  fanoutMaxLines: number;
  routedClients: number;
  routedLinesPerClient: number;
  churnConns: number[];
  churnDurationMs: number;
  /**
   * Churn's warm-up, C=10, discarded. A connection runs most of the server's per-connection code once, so Bun's
   * optimizing JIT reaches it only after thousands: measured, it stops compiling after some 15,000 connections
   * (16 s here). Shorter, churn measures a server still compiling its own connection path.
   */
  churnWarmupMs: number;
  memoryClients: number;
  memoryRooms: number[];
  startupReps: number;
  scale: ScalePlan;
}

/** The scenarios of one busy node (issue 19): thousands of clients, a room-open storm, mixed traffic. */
export interface ScalePlan {
  /** Repetitions of each of these scenarios (each on a fresh server): they are long, so fewer than `reps`. */
  reps: number;
  /** Load generator processes for the crowd and the mixed load, so that they are not one core's worth. */
  generators: number;
  crowdClients: number;
  crowdRooms: number;
  stormRooms: number;
  stormConns: number;
  /** The probe's round trips at rest are timed for this long before the storm. */
  stormRestMs: number;
  mixedClients: number;
  mixedRoomSize: number;
  /** Messages per second each client sends. */
  mixedRate: number;
  mixedDurationMs: number;
  /** Round trips of the first part of the mixed run are not timed (connections and JIT settle). */
  mixedWarmupMs: number;
  endpointRooms: number;
  endpointRequests: number;
}

export const FULL: Plan = {
  quick: false,
  reps: 3,
  echo: [1, 10, 100].flatMap((conns) => [1, 32].map((window) => ({ conns, window }))),
  echoPinned: [1, 10, 100].flatMap((conns) => [1, 32].map((window) => ({ conns, window }))),
  echoWarmupMs: 200,
  echoDurationMs: 800,
  fanoutClients: [10, 100, 1000],
  fanoutDeliveries: 1_000_000,
  fanoutMaxLines: 50_000,
  routedClients: 100,
  // 300k deliveries: some 0.6 s of server CPU, where one 10 ms tick is 0.03 us per delivery (0.1 at 100k).
  routedLinesPerClient: 3000,
  churnConns: [1, 10],
  churnDurationMs: 1000,
  churnWarmupMs: 16_000,
  memoryClients: 1000,
  memoryRooms: [1, 100],
  startupReps: 11,
  scale: {
    // Two, not three: the mixed load alone is 30 s a run, and the full plan must stay under 15 minutes.
    reps: 2,
    generators: 4,
    crowdClients: 15_000,
    crowdRooms: 1000,
    stormRooms: 1000,
    stormConns: 100,
    stormRestMs: 1500,
    mixedClients: 5000,
    mixedRoomSize: 10,
    mixedRate: 5,
    mixedDurationMs: 30_000,
    mixedWarmupMs: 3000,
    endpointRooms: 1000,
    endpointRequests: 30,
  },
};

export const QUICK: Plan = {
  quick: true,
  reps: 3,
  echo: [],
  echoPinned: [
    { conns: 1, window: 1 },
    { conns: 100, window: 32 },
  ],
  echoWarmupMs: 100,
  echoDurationMs: 300,
  fanoutClients: [100],
  fanoutDeliveries: 400_000,
  fanoutMaxLines: 20_000,
  routedClients: 100,
  routedLinesPerClient: 1000,
  churnConns: [10],
  churnDurationMs: 500,
  churnWarmupMs: 2000,
  memoryClients: 1000,
  memoryRooms: [1],
  startupReps: 5,
  scale: {
    reps: 1,
    generators: 2,
    crowdClients: 3000,
    crowdRooms: 200,
    stormRooms: 300,
    stormConns: 100,
    stormRestMs: 500,
    mixedClients: 1000,
    mixedRoomSize: 10,
    mixedRate: 5,
    mixedDurationMs: 5000,
    mixedWarmupMs: 1000,
    endpointRooms: 1000,
    endpointRequests: 10,
  },
};
