//! Strongly connected components of a directed graph (Tarjan's algorithm, without recursion, so
//! a long dependency chain cannot overflow a stack).
//!
//! Must not: know what the nodes are.

use std::collections::HashMap;

/// The components of the graph over `nodes` (edges from `succ`; successors outside `nodes` are
/// ignored), each component listed after every component it reaches: dependencies first.
pub fn components<I>(nodes: &[usize], succ: impl Fn(usize) -> I) -> Vec<Vec<usize>>
where
    I: Iterator<Item = usize>,
{
    let member: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut low: HashMap<usize, usize> = HashMap::new();
    let mut on_stack: std::collections::HashSet<usize> = Default::default();
    let mut stack: Vec<usize> = Vec::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &start in nodes {
        if index.contains_key(&start) {
            continue;
        }
        // (node, its successors still to look at)
        let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
        let visit = |v: usize,
                     index: &mut HashMap<usize, usize>,
                     low: &mut HashMap<usize, usize>,
                     stack: &mut Vec<usize>,
                     on_stack: &mut std::collections::HashSet<usize>|
         -> (usize, Vec<usize>) {
            let k = index.len();
            index.insert(v, k);
            low.insert(v, k);
            stack.push(v);
            on_stack.insert(v);
            let mut s: Vec<usize> = succ(v).filter(|t| member.contains(t)).collect();
            s.reverse();
            (v, s)
        };
        work.push(visit(
            start,
            &mut index,
            &mut low,
            &mut stack,
            &mut on_stack,
        ));
        while let Some((v, todo)) = work.last_mut() {
            let v = *v;
            if let Some(t) = todo.pop() {
                if !index.contains_key(&t) {
                    work.push(visit(t, &mut index, &mut low, &mut stack, &mut on_stack));
                } else if on_stack.contains(&t) {
                    let l = low[&v].min(index[&t]);
                    low.insert(v, l);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _)) = work.last() {
                let l = low[parent].min(low[&v]);
                low.insert(*parent, l);
            }
            if low[&v] == index[&v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack.remove(&w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                out.push(comp);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, usize)]) -> impl Fn(usize) -> std::vec::IntoIter<usize> + '_ {
        move |v| {
            edges
                .iter()
                .filter(|(a, _)| *a == v)
                .map(|&(_, b)| b)
                .collect::<Vec<_>>()
                .into_iter()
        }
    }

    #[test]
    fn cycles_are_one_component_and_dependencies_come_first() {
        // 0 → 1 → 2 → 1, 2 → 3, 4 alone, 0 → 5 (not a member: ignored)
        let edges = [(0, 1), (1, 2), (2, 1), (2, 3), (0, 5)];
        let comps = components(&[0, 1, 2, 3, 4], graph(&edges));
        let pos = |n: usize| comps.iter().position(|c| c.contains(&n)).unwrap();
        assert_eq!(comps.len(), 4, "{comps:?}");
        assert_eq!(comps[pos(1)], vec![1, 2]);
        assert!(pos(3) < pos(1) && pos(1) < pos(0), "{comps:?}");
        assert!(comps.iter().all(|c| !c.contains(&5)));
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let nodes: Vec<usize> = (0..=200_000).collect();
        let succ = |v: usize| (v < 200_000).then_some(v + 1).into_iter();
        let comps = components(&nodes, succ);
        assert_eq!(comps.len(), nodes.len());
        assert_eq!(comps[0], vec![200_000]);
    }
}
