# plot_kernels.gp - GOP/s against batch size, one panel per layer shape,
# from bench_kernels' CSV: every *_gops column (each int8 tier measured,
# OpenBLAS fp32, oneDNN with AVX-512 VNNI).  gnuplot -e
# "csv='build/bench/kernels.csv'; out='build/bench/kernels.png'" bench/plot_kernels.gp
if (!exists("csv")) csv = 'build/bench/kernels.csv'
if (!exists("out")) out = 'build/bench/kernels.png'
set terminal pngcairo size 1200,900 font ",10"
set output out
set datafile separator ','
set logscale x 2
set xlabel 'batch M'
set ylabel 'GOP/s (2*M*N*K / time)'
set key top left font ',8' noenhanced
set grid
hdr = system(sprintf("head -1 %s | tr ',' ' '", csv))
n = words(hdr)
isg(i) = strstrt(word(hdr, i), "_gops") > 0
set multiplot layout 2,2 title 'int8 GEMM, one core: our exact tiers vs OpenBLAS fp32 vs oneDNN int8'
do for [shape in "256,784 128,256 10,128 1024,1024"] {
  src = sprintf('< grep "^%s," %s', shape, csv)
  set title sprintf('N,K = %s', shape)
  plot for [i=4:n] src using 3:(isg(i) ? column(i) : 1/0) with linespoints lw 2 \
       title (isg(i) ? word(hdr, i)[1:strstrt(word(hdr, i), "_gops") - 1] : "")
}
unset multiplot
