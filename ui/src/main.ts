import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { bridge } from './lib/bridge';

const target = document.getElementById('app');
if (!target) throw new Error('#app element missing from index.html');

export default mount(App, { target, props: { bridge } });
