/**
 * @module turns/engine/admission
 * Admission control: at most `max` turns run at once across all sessions (and at most
 * `perUser` for one user, when set). A turn that cannot start waits for a slot in FIFO order;
 * how many may wait is bounded by `bounds.ts` (429 beyond it). USER_MAX_CONCURRENT_TURNS is
 * refused at submission by `bounds.ts`; here it only holds back turns that never went through a
 * submission (taken up after a restart or from a replica that is gone).
 */
export interface Admission {
  /** Waits for a slot; resolves with the function that gives it back. */
  acquire(userId: string): Promise<() => void>;
  /** A slot now, or null when none is free (or others are already waiting). */
  tryAcquire(userId: string): (() => void) | null;
  /** Whether `tryAcquire` would give a slot now (takes none). */
  canStart(userId: string): boolean;
  /** Turns running now. */
  readonly running: number;
  /** Turns waiting for a slot. */
  readonly waiting: number;
}

export function createAdmission(max: number, perUser?: number): Admission {
  let running = 0;
  const byUser = new Map<string, number>();
  const waiters: Array<{ userId: string; grant: () => void }> = [];

  const fits = (userId: string) => running < max && (perUser === undefined || (byUser.get(userId) ?? 0) < perUser);

  function take(userId: string): () => void {
    running++;
    byUser.set(userId, (byUser.get(userId) ?? 0) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      running--;
      const n = (byUser.get(userId) ?? 1) - 1;
      if (n <= 0) byUser.delete(userId);
      else byUser.set(userId, n);
      // First waiter whose user is under its cap goes next.
      const i = waiters.findIndex((w) => fits(w.userId));
      if (i >= 0) waiters.splice(i, 1)[0]!.grant();
    };
  }

  return {
    acquire(userId) {
      if (waiters.length === 0 && fits(userId)) return Promise.resolve(take(userId));
      return new Promise((resolve) => waiters.push({ userId, grant: () => resolve(take(userId)) }));
    },
    canStart(userId) {
      return waiters.length === 0 && fits(userId);
    },
    tryAcquire(userId) {
      return waiters.length === 0 && fits(userId) ? take(userId) : null;
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiters.length;
    },
  };
}

/** An admission slot that a turn gives back while a person decides, and takes again after. */
export interface Slot {
  release(): void;
  reacquire(): Promise<void>;
}

/** Holds a slot (or none yet) for a user's turn. */
export function holdSlot(admission: Admission, userId: string, release: (() => void) | null): Slot {
  let rel = release;
  return {
    release() {
      rel?.();
      rel = null;
    },
    async reacquire() {
      if (!rel) rel = await admission.acquire(userId);
    },
  };
}
