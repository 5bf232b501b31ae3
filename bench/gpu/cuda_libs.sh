# Sourced by the GPU scripts: puts the directories of cuBLAS and cudart (the toolkit's, else the
# pip copies next to PyTorch) on LD_LIBRARY_PATH for the loader of our CUDA binaries.
for lib in libcublas.so.13 libcudart.so.13; do
  d=$(dirname "$(find /usr/local /opt -name "$lib" 2>/dev/null | head -1)")
  [ "$d" != . ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
