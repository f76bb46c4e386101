# plot_kernels.gp - GOP/s against batch size, one panel per layer shape,
# from bench_kernels' CSV.  gnuplot -e "csv='build/bench/kernels.csv';
# out='build/bench/kernels.png'" bench/plot_kernels.gp
if (!exists("csv")) csv = 'build/bench/kernels.csv'
if (!exists("out")) out = 'build/bench/kernels.png'
set terminal pngcairo size 1200,900 font ",10"
set output out
set datafile separator ','
set logscale x 2
set xlabel 'batch M'
set ylabel 'GOP/s (2*M*N*K / time)'
set key top left font ',8'
set grid
set multiplot layout 2,2 title 'int8 GEMM, one core: ours (exact) vs OpenBLAS fp32 vs oneDNN int8'
do for [shape in "256,784 128,256 10,128 1024,1024"] {
  src = sprintf('< grep "^%s," %s', shape, csv)
  set title sprintf('N,K = %s', shape)
  plot src using 3:10 with linespoints lw 2 title 'ours, x 0..255', \
       src using 3:11 with linespoints lw 2 title 'ours, x 0..127', \
       src using 3:13 with linespoints title 'OpenBLAS fp32', \
       src using 3:14 with linespoints title 'oneDNN AVX2 (x 0..127; wrong above)', \
       src using 3:15 with linespoints dt 2 title 'oneDNN AVX-512 VNNI'
}
unset multiplot
