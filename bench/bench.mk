# Benchmarks (bench/NAME/run); see bench/RESULTS.md.
DEPS += socat
