import type { Supervisor } from '../../src/supervisor/supervisor';
import type { LifecycleView } from '../../src/health/checks';

// Compile-time proof that main.ts can hand the Supervisor itself to startHealth.
export function asLifecycle(s: Supervisor): LifecycleView {
  return s;
}
