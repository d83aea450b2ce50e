// The `koa2` dev dependency is Koa 2 installed under another name; it has the same public types.
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
