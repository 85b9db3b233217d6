import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// The desktop shell (src-tauri) embeds `dist/` at compile time.
export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  // Relative asset URLs work under Tauri's custom protocol.
  base: './',
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // WebKitGTK 2.4x on Linux, WebView2 (Chromium) on Windows.
    target: ['es2021', 'safari15', 'chrome105'],
    chunkSizeWarningLimit: 1024,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test/setup.ts'],
  },
});
