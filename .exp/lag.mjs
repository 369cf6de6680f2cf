let last = performance.now();
setInterval(() => { const now = performance.now(); const lag = now - last - 10; if (lag > 30) process.stderr.write(`LAG ${lag.toFixed(0)} ms at ${new Date().toISOString()}\n`); last = now; }, 10).unref();
