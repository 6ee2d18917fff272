// Moved to src/exit-codes.ts (a room below everything, so that native/ need not import from
// supervisor/). Kept while branches that import it from here are in flight; remove when none does.
export * from '../exit-codes';
