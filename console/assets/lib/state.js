// What the modules share: who is signed in, and two flags for the next render.

export const state = {
  me: null, //          {user, role, csrf} once logged in
  keepNotice: false, // keep the success notice through the next render
  focusHeading: false, // after a navigation, focus the new page's heading
};

/** Whether the signed-in user may change things (operators can, viewers only look). */
export const canEdit = () => Boolean(state.me && state.me.role === 'operator');
