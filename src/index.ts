export const x: Array<number> = [1]
