/**
 * @module events/live-bus
 * The live side of a session log: who follows which session (the same for both logs). A null
 * event ("poke") tells a subscriber to read the log again.
 */
import { EventEmitter } from 'node:events';
import type { SessionEvent } from './log.js';

/** The live side of a session log: who follows which session (the same for both logs). */
export function createLiveBus() {
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  let subscribers = 0;
  return {
    emit: (sessionId: string, e: SessionEvent | null) => bus.emit(sessionId, e),
    listeners: (sessionId: string) => bus.listenerCount(sessionId),
    subscribe: (sessionId: string, fn: (e: SessionEvent | null) => void): (() => void) => {
      bus.on(sessionId, fn);
      subscribers++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        subscribers--;
        bus.off(sessionId, fn);
      };
    },
    poke: (sessionId: string) => {
      bus.emit(sessionId, null);
    },
    pokeAll: () => {
      for (const name of bus.eventNames()) bus.emit(name, null);
    },
    get subscribers() {
      return subscribers;
    },
  };
}
