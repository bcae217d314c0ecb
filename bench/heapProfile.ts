/**
 * A node of V8's sampling heap profile (`HeapProfiler.stopSampling`), for the scripts that read
 * one (`allocations.ts`, `async-survival.ts`).
 */
export interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<ProfileNode>
}
